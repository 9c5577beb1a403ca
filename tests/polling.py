"""The one HTTP client of the tests' polls (readiness, metrics, health).

`httpx.get` builds a new client, and with it a TLS context loaded with every certificate,
for each call: about 20 ms of CPU for a plain-HTTP request on loopback, paid five or ten
times a second by every wait for a server to start. One client, made once per test process
and thread-safe, costs that once. Pass `CLOSE` as headers where each request must open a new
connection (to reach every worker behind one port).
"""

import atexit

import httpx

POLL = httpx.Client(timeout=2)
atexit.register(POLL.close)
CLOSE = {"Connection": "close"}
