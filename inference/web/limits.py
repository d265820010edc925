"""The served page's limits, in one place (importable without FastAPI, for the command's ``--help``)."""

#: Largest request body accepted (a phone photo fits; anything larger gets 413).
MAX_UPLOAD_BYTES = 8 * 1024 * 1024
#: Largest image accepted, in pixels (PIL's own bomb check would only warn below twice its limit).
MAX_PIXELS = 40_000_000
#: Seconds a request body may take to arrive in full (a slower one gets 408 and frees its connection).
BODY_TIMEOUT_S = 10.0
#: Predictions that may be pending at once, the running one included (more get 503 with Retry-After).
#: At about 25 ms a prediction on 2 cores, a full queue drains in under a second.
QUEUE_SIZE = 32
