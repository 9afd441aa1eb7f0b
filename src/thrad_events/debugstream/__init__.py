"""The event debugger's live stream: each request of a watched partner, as it ends, to every
stream open on any worker process or node.

capture.py   what the pipeline notes of a request while someone watches (its key, body, rows)
events.py    the event a request becomes, bounded in size for the bus
hub.py       this process's streams, the leases that say who watches anywhere, the cheap flag
bus.py       how processes reach each other: unix sockets between a host's workers (SQLite)
pg_bus.py    PostgreSQL LISTEN/NOTIFY between the workers of every node (PostgreSQL)
"""
