"""The OpenAPI document of every public endpoint, served at /openapi.json.

document.py assembles it from the msgspec Structs that validate requests and from one module per
part: reports.py, export.py, delivery.py, tag.py and admin.py, with what they share in shared.py.
"""

from thrad_events.http.openapi.document import build_openapi, openapi_handle

__all__ = ["build_openapi", "openapi_handle"]
