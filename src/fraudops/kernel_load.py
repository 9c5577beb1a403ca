"""Loading a compiled kernel now, by a thread, or never.

The online features and the tree walk each have a numba kernel and an identical Python or
numpy path. A service loads the kernel in a thread so that a start or a model swap does not
wait for numba (a few hundred ms from the disk cache, seconds for a first compile), and the
identical path serves until the kernel is in; tests and benchmarks load it at once.
"""

import threading
from collections.abc import Callable

# When to load a kernel: now, by a thread, or (any other word, e.g. "numpy", "python") never.
NOW, IN_A_THREAD = "compiled", "background"


def load_kernel(load: Callable[[], None], *, when: str, thread_name: str) -> threading.Event:
    """Run `load` now (`when` "compiled"), in a daemon thread ("background"), or not at all;
    the event is set once it has ended, however it ended (at once if it is not run)."""
    settled = threading.Event()

    def run() -> None:
        try:
            load()
        finally:
            settled.set()

    if when == NOW:
        run()
    elif when == IN_A_THREAD:
        threading.Thread(target=run, name=thread_name, daemon=True).start()
    else:
        settled.set()
    return settled
