"""The Jamf Pro signal source (docs/jamf.md): tokens, the API client, mapping, lookups.

- :mod:`.http`: one Jamf URL, at most 5 connections, timeouts, retries with backoff;
- :mod:`.auth`: API client credentials or user bearer tokens, renewed before expiry;
- :mod:`.client`: the inventory, name and version calls (v4→v1 fallback for computers);
- :mod:`.mapping`: the guide's attribute mapping and groups;
- :mod:`.lookup`: :class:`JamfSource`, the signal source (cache rules in its docstring);
- :mod:`.diagnose`: the guide's "Validate".
"""

from acmegate.policy.sources.jamf.errors import JamfError, JamfFailure
from acmegate.policy.sources.jamf.lookup import JamfSource
from acmegate.policy.sources.jamf.mapping import AttributeMapping, mapping_problems

__all__ = ["AttributeMapping", "JamfError", "JamfFailure", "JamfSource", "mapping_problems"]
