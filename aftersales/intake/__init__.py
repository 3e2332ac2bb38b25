"""Opening cases at the door, one module per process: the request is checked once (bad input is
refused and nothing is recorded), the case id is made from it, and one flow run is started with the
case id as its idempotency key (``core.start_case_run``). The CLI, the API, the tracker, the review
monitor and the demo cases all open cases through here; flows import it, it imports no flow."""
