"""Type stubs of agentos_ccc (see docs/python.md)."""

import os
from typing import Any, Callable, Dict, Mapping, Optional, Tuple, Union

PathLike = Union[str, "os.PathLike[str]"]
Transport = Callable[[str, Dict[str, Any]], Any]

MINIMIZED_SUMMARY_FIELDS: Tuple[str, ...]
TIER_ENTITLEMENTS: Dict[str, Optional[str]]
__version__: str

class AgentosError(Exception):
    message: str
    code: Optional[str]
    def __init__(self, message: str = ..., code: Optional[str] = ...) -> None: ...

class LicenseError(AgentosError): ...

class ValidationError(AgentosError, ValueError):
    pointer: Optional[str]
    def __init__(
        self, message: str = ..., code: Optional[str] = ..., pointer: Optional[str] = ...
    ) -> None: ...

class _Tier:
    name: str

class LocalOnly(_Tier): ...
class Minimized(_Tier): ...
class Full(_Tier): ...

class LicenseClient:
    pack_path: Optional[str]
    pubkeys: Dict[str, str]
    verifier: Optional[Callable[[str, bytes, str], Any]]
    clock: Callable[[], float]
    device: Optional[str]
    def __init__(
        self,
        pack_path: Optional[PathLike] = ...,
        *,
        pubkeys: Union[None, str, Mapping[str, str]] = ...,
        verifier: Optional[Callable[[str, bytes, str], Any]] = ...,
        clock: Callable[[], float] = ...,
        data_dir: Optional[PathLike] = ...,
    ) -> None: ...
    def load_pack(self) -> Dict[str, Any]: ...
    def validate_pack(self, pack: Optional[Mapping[str, Any]] = ...) -> Dict[str, Any]: ...
    def check_entitlement(self, feature: str) -> bool: ...
    def bind_device(self, device: Optional[str]) -> Optional[str]: ...
    def ensure_payload(self) -> Dict[str, Any]: ...
    def refresh(self) -> Dict[str, Any]: ...

class CCCClient:
    tier: str
    data_dir: str
    transport: Optional[Transport]
    licensing: Any
    session_id: Optional[str]
    session_tier: Optional[str]
    last_start: Optional[Dict[str, Any]]
    def __init__(
        self,
        *,
        base_url: Optional[str],
        api_key: Optional[str],
        data_dir: PathLike,
        privacy: Any,
        licensing: Any = ...,
        transport: Optional[Transport] = ...,
        tier_entitlements: Optional[Mapping[str, Optional[str]]] = ...,
    ) -> None: ...
    def license_handshake(self) -> Optional[Dict[str, Any]]: ...
    def start_session(
        self,
        *,
        repo_id: str,
        branch: str,
        commit: str,
        license_id: Optional[str],
        metadata: Optional[Mapping[str, Any]] = ...,
        session_id: Optional[str] = ...,
    ) -> str: ...
    def log_event(
        self,
        *,
        model: str,
        subagent: str,
        tokens_in: int,
        tokens_out: int,
        input_kind: str,
        latency_ms: float,
        measurement: Optional[Mapping[str, Any]] = ...,
        feature: Optional[Mapping[str, Any]] = ...,
        cost: Optional[Mapping[str, Any]] = ...,
        value: Optional[Mapping[str, Any]] = ...,
        attribution: Optional[Mapping[str, float]] = ...,
        capacity_used: Optional[float] = ...,
        decision: Optional[Mapping[str, Any]] = ...,
    ) -> None: ...
    def end_session(self, notes: Optional[str] = ...) -> None: ...
    def refresh_metrics_summary(self) -> Dict[str, Any]: ...
    def upload_minimized_metrics(
        self, summary: Optional[Mapping[str, Any]] = ..., *, timeout: float = ...
    ) -> Dict[str, Any]: ...
    def flush(self, timeout: float = ...) -> bool: ...
    def close(self, timeout: float = ...) -> bool: ...
    def __enter__(self) -> "CCCClient": ...
    def __exit__(self, *exc: Any) -> None: ...
    @property
    def delivery_state(self) -> str: ...
    def preview(self, tier: Optional[str] = ...) -> Dict[str, Any]: ...

def preview(data_dir: PathLike, tier: Optional[Any] = ...) -> Dict[str, Any]: ...
def verify_license(
    path: PathLike,
    *,
    data_dir: Optional[PathLike] = ...,
    pubkeys: Union[None, str, Mapping[str, str]] = ...,
    now: Optional[int] = ...,
) -> Dict[str, Any]: ...
def backfill(
    ccp_root: PathLike,
    *,
    data_dir: PathLike,
    usage_json: Optional[str] = ...,
    output: Optional[PathLike] = ...,
    dry_run: bool = ...,
) -> Dict[str, Any]: ...
def report(
    kind: str = ...,
    *,
    data_dir: PathLike,
    since: Optional[str] = ...,
    until: Optional[str] = ...,
    timezone: Optional[str] = ...,
    start_of_week: Optional[str] = ...,
    project: Optional[str] = ...,
    session_id: Optional[str] = ...,
    ccusage_format: bool = ...,
) -> Dict[str, Any]: ...
