"""Process-wide settings of a scoring server, applied where the server starts."""

import gc
import sys

# How long a thread may hold the GIL while another waits for it (Python's default: 5 ms).
GIL_SWITCH_SECONDS = 0.001


def settle_process_for_serving() -> None:
    """Tune this process for serving, once the models and the state are loaded.

    The warehouse writer thread gives up the GIL for every database call and must wait for
    it back while the scoring thread computes: at Python's default 5 ms switch interval that
    wait, not the database, limited how fast the warehouse kept up under load. Everything
    loaded so far lives as long as the server: frozen out of the collector's way, so no
    request pays for a full collection of it.
    """
    sys.setswitchinterval(GIL_SWITCH_SECONDS)
    gc.collect()
    gc.freeze()
