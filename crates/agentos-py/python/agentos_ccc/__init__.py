"""agentos for Python: the Rust recorder and durable delivery behind the seed's ``CCCClient`` API.

Switching from the seed's adapter is a change of import::

    from agentos_ccc import CCCClient, Minimized, LicenseClient, LicenseError

Everything that touches files, licenses or the network is the Rust code of the ``agentos``
binary (``agentos_ccc._native``): the same ``windows.jsonl``, ``glm_counts.jsonl`` and
``metrics_summary.json``, the same schema validation, tiers and license rules. This module only
adapts the seed's calling conventions (strategy objects, injectable license client and
transport) to it. See ``docs/python.md``.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Callable, Dict, Mapping, Optional, Union

from . import _native

__all__ = [
    "CCCClient",
    "LocalOnly",
    "Minimized",
    "Full",
    "LicenseClient",
    "AgentosError",
    "LicenseError",
    "ValidationError",
    "preview",
    "verify_license",
    "backfill",
    "report",
    "MINIMIZED_SUMMARY_FIELDS",
    "TIER_ENTITLEMENTS",
]

#: The summary keys that may leave under ``minimized`` and ``full`` (``/v1/metrics``).
MINIMIZED_SUMMARY_FIELDS = tuple(_native.MINIMIZED_SUMMARY_FIELDS)
#: The license entitlement each tier needs (``local``: none).
TIER_ENTITLEMENTS: Dict[str, Optional[str]] = dict(_native.TIER_ENTITLEMENTS)
__version__ = _native.VERSION

PathLike = Union[str, "os.PathLike[str]"]
Transport = Callable[[str, Dict[str, Any]], Any]


# --------------------------------------------------------------------------------------------
# Errors


class AgentosError(Exception):
    """An error of the agentos layer; ``code`` is a stable snake_case cause."""

    def __init__(self, message: str = "", code: Optional[str] = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class LicenseError(AgentosError):
    """A license pack is missing, invalid, or lacks the entitlement a tier needs.

    ``code`` names the rejection (``bad_signature``, ``expired``, ``schema_mismatch``,
    ``missing_entitlement``, ``no_pack``, ...), the same codes the CLI prints.
    """


class ValidationError(AgentosError, ValueError):
    """An event breaks a v1 schema rule; nothing was written. ``pointer`` is the JSON pointer
    of the offending value (e.g. ``/turn/tokens_in``)."""

    def __init__(
        self, message: str = "", code: Optional[str] = None, pointer: Optional[str] = None
    ) -> None:
        super().__init__(message, code)
        self.pointer = pointer


def _translate(e: BaseException) -> AgentosError:
    kind, code, message, pointer = e.args
    if kind == "license":
        return LicenseError(message, code)
    if kind == "validation":
        return ValidationError(message, code, pointer)
    return AgentosError(message, code)


# --------------------------------------------------------------------------------------------
# Privacy tiers (the seed's strategy objects)


class _Tier:
    name = "local"

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def __eq__(self, other: object) -> bool:
        return getattr(other, "name", None) == self.name

    def __hash__(self) -> int:
        return hash(self.name)


class LocalOnly(_Tier):
    """Nothing leaves the machine."""

    name = "local"


class Minimized(_Tier):
    """Only the allowlisted summary fields go to ``/v1/metrics``."""

    name = "minimized"


class Full(_Tier):
    """Redacted events go to ``/v1/events``, the allowlisted summary to ``/v1/metrics``."""

    name = "full"


_TIERS = ("local", "minimized", "full")


def _tier_name(privacy: Any) -> str:
    name = privacy if isinstance(privacy, str) else getattr(privacy, "name", None)
    if isinstance(name, str):
        n = name.strip().lower()
        if n == "minimised":
            n = "minimized"
        if n in _TIERS:
            return n
    raise ValueError(
        f"privacy must be 'local', 'minimized' or 'full', or an object whose name is one of them; got {privacy!r}"
    )


# --------------------------------------------------------------------------------------------
# Licensing


class LicenseClient:
    """Loads and validates a ``ccp.license.v1`` pack and checks entitlements.

    The default verifier is the Rust Ed25519 path with the keys in ``pubkeys`` (a dict
    ``kid -> base64`` or a ``"kid=base64,..."`` string; default: ``AGENTOS_LICENSE_PUBKEYS``
    and, when ``data_dir`` is given, its ``agentos.toml``). An injected
    ``verifier(kid, payload: bytes, signature: str)`` that raises on a bad signature, and a
    ``clock`` returning unix seconds, replace them (as the seed's tests do); the claim checks
    (schema, expiry, device binding) stay the Rust ones either way.
    """

    def __init__(
        self,
        pack_path: Optional[PathLike] = None,
        *,
        pubkeys: Union[None, str, Mapping[str, str]] = None,
        verifier: Optional[Callable[[str, bytes, str], Any]] = None,
        clock: Callable[[], float] = time.time,
        data_dir: Optional[PathLike] = None,
    ) -> None:
        self.pack_path = os.fspath(pack_path) if pack_path is not None else None
        try:
            if pubkeys is None:
                keys = _native.configured_pubkeys(
                    os.fspath(data_dir) if data_dir is not None else None
                )
            elif isinstance(pubkeys, str):
                keys = _native.parse_pubkeys(pubkeys)
            else:
                keys = dict(pubkeys)
        except _native.NativeError as e:
            raise _translate(e) from None
        self.pubkeys: Dict[str, str] = keys
        self.verifier = verifier
        self.clock = clock
        self.device: Optional[str] = _native.device_binding() or None
        self._raw: Optional[bytes] = None
        self._pack: Optional[Dict[str, Any]] = None
        self._claims: Optional[Dict[str, Any]] = None

    def load_pack(self) -> Dict[str, Any]:
        """Reads the pack (combined, or split with ``<path>.sig``) as a dict; unverified."""
        if self.pack_path is None:
            raise LicenseError(
                "no license pack configured (pass LicenseClient(pack_path))", "no_pack"
            )
        try:
            raw = _native.read_pack(self.pack_path)
        except _native.NativeError as e:
            raise _translate(e) from None
        try:
            pack = json.loads(raw)
        except ValueError as e:
            raise LicenseError(f"license pack {self.pack_path} is not JSON: {e}", "malformed") from None
        self._raw, self._pack, self._claims = raw, pack, None
        return dict(pack)

    def validate_pack(self, pack: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
        """Verifies ``pack`` (default: the one last loaded) at ``clock()``; returns its claims
        plus ``kid``. Raises ``LicenseError`` with the rejection code."""
        if pack is None:
            if self._raw is None:
                self.load_pack()
            raw = self._raw
        elif self._pack is not None and dict(pack) == self._pack:
            # The exact bytes from disk: a pack signed over its stored bytes still verifies.
            raw = self._raw
        else:
            raw = json.dumps(pack, separators=(",", ":"), sort_keys=True).encode()
        assert raw is not None
        try:
            text = _native.verify_pack(
                raw,
                now=int(self.clock()),
                pubkeys=self.pubkeys,
                verifier=self.verifier,
                device=self.device,
            )
        except _native.NativeError as e:
            self._claims = None
            raise _translate(e) from None
        self._claims = json.loads(text)
        return dict(self._claims)

    def check_entitlement(self, feature: str) -> bool:
        """Whether the validated pack grants ``feature`` (validates first if needed)."""
        claims = self.ensure_payload()
        return feature in claims.get("features", ())

    def bind_device(self, device: Optional[str]) -> Optional[str]:
        """Sets this machine's device value for device-bound packs (None: not checked);
        the next check re-validates."""
        self.device = device
        self._claims = None
        return device

    def ensure_payload(self) -> Dict[str, Any]:
        """The validated claims, loading and validating the pack when not done yet."""
        if self._claims is None:
            self.validate_pack(self.load_pack() if self._raw is None else None)
        assert self._claims is not None
        return dict(self._claims)

    def refresh(self) -> Dict[str, Any]:
        """Re-reads the pack from disk and validates it again; returns the claims."""
        self._raw = self._pack = self._claims = None
        self.load_pack()
        return self.validate_pack()


# --------------------------------------------------------------------------------------------
# The client


class CCCClient:
    """The seed's adapter API on the Rust recorder.

    Events are appended to ``<data_dir>/windows.jsonl`` by the Rust recorder. Without a
    ``transport`` a background uploader (a Rust thread) delivers them durably to ``base_url``
    as the tier allows; with a ``transport`` the seed's synchronous contract applies instead
    (see ``docs/python.md``). Use as a context manager, or call ``close()``.
    """

    def __init__(
        self,
        *,
        base_url: Optional[str],
        api_key: Optional[str],
        data_dir: PathLike,
        privacy: Any,
        licensing: Any = None,
        transport: Optional[Transport] = None,
        tier_entitlements: Optional[Mapping[str, Optional[str]]] = None,
    ) -> None:
        self.tier = _tier_name(privacy)
        self.privacy = privacy
        self.data_dir = os.fspath(data_dir)
        self.transport = transport
        self.tier_entitlements: Dict[str, Optional[str]] = dict(TIER_ENTITLEMENTS)
        if tier_entitlements:
            self.tier_entitlements.update(tier_entitlements)
        if isinstance(licensing, (str, os.PathLike)):
            licensing = LicenseClient(licensing, data_dir=self.data_dir)
        self.licensing = licensing
        pack = getattr(licensing, "pack_path", None)
        pubkeys = getattr(licensing, "pubkeys", None) if isinstance(licensing, LicenseClient) else None
        try:
            self._rec = _native.Recorder(
                self.data_dir,
                base_url=base_url or None,
                api_key=api_key or None,
                license_pack=os.fspath(pack) if isinstance(pack, (str, os.PathLike)) else None,
                pubkeys=dict(pubkeys) if pubkeys else None,
                background=transport is None,
            )
        except _native.NativeError as e:
            raise _translate(e) from None
        self._want_events = transport is not None
        self.session_id: Optional[str] = None
        self.session_tier: Optional[str] = None
        self.last_start: Optional[Dict[str, Any]] = None

    # -- the seed's methods ------------------------------------------------------------------

    def license_handshake(self) -> Optional[Dict[str, Any]]:
        """Loads and validates the pack and checks the tier's entitlement; None without
        ``licensing``. Raises ``LicenseError`` (code ``missing_entitlement`` when the pack is
        valid but does not grant the tier)."""
        lic = self.licensing
        if lic is None:
            return None
        pack = lic.load_pack()
        claims = lic.validate_pack(pack)
        needed = self.tier_entitlements.get(self.tier)
        if needed and not lic.check_entitlement(needed):
            raise LicenseError(
                f"license does not grant {needed}, which tier {self.tier} needs",
                "missing_entitlement",
            )
        return {"tier": self.tier, "entitlement": needed, "claims": claims}

    def start_session(
        self,
        *,
        repo_id: str,
        branch: str,
        commit: str,
        license_id: Optional[str],
        metadata: Optional[Mapping[str, Any]] = None,
        session_id: Optional[str] = None,
    ) -> str:
        """Starts a session (license handshake first when ``licensing`` is set) and returns
        its id."""
        # `local` needs no entitlement, so there is nothing to hand-shake for (the seed's
        # matrix: no licensing gate for the local tier).
        handshake = (
            self.license_handshake() if self.tier_entitlements.get(self.tier) else None
        )
        if license_id is None and handshake is not None:
            claims = handshake.get("claims")
            license_id = claims.get("sub") if isinstance(claims, dict) else None
        try:
            text = self._rec.start_session(
                repo_id=repo_id,
                branch=branch,
                commit=commit,
                license_id=license_id,
                tier=self.tier,
                metadata_json=json.dumps(dict(metadata)) if metadata else None,
                session_id=session_id,
                handshaken=handshake is not None,
                want_event=self._want_events,
            )
        except _native.NativeError as e:
            raise _translate(e) from None
        out = json.loads(text)
        self.last_start = out
        self.session_id = out["session_id"]
        self.session_tier = out["tier"]
        event = out.pop("event", None)
        if event is not None and self.transport is not None:
            self.transport("/v1/events", event)
        return out["session_id"]

    def log_event(
        self,
        *,
        model: str,
        subagent: str,
        tokens_in: int,
        tokens_out: int,
        input_kind: str,
        latency_ms: float,
        measurement: Optional[Mapping[str, Any]] = None,
        feature: Optional[Mapping[str, Any]] = None,
        cost: Optional[Mapping[str, Any]] = None,
        value: Optional[Mapping[str, Any]] = None,
        attribution: Optional[Mapping[str, float]] = None,
        capacity_used: Optional[float] = None,
        decision: Optional[Mapping[str, Any]] = None,
    ) -> None:
        """Records one turn of the current session (validated; ``ValidationError`` names the
        JSON pointer and nothing is written)."""
        extras = None
        if (
            measurement is not None
            or feature is not None
            or cost is not None
            or value is not None
            or decision is not None
        ):
            d: Dict[str, Any] = {}
            if measurement is not None:
                d["measurement"] = measurement
            if feature is not None:
                d["feature"] = feature
            if cost is not None:
                d["cost"] = cost
            if value is not None:
                d["value"] = value
            if decision is not None:
                d["decision"] = decision
            extras = json.dumps(d)
        try:
            event = self._rec.record_turn(
                model,
                subagent,
                tokens_in,
                tokens_out,
                getattr(input_kind, "value", input_kind),
                latency_ms,
                capacity_used,
                dict(attribution) if attribution is not None else None,
                extras,
                self._want_events,
            )
        except _native.NativeError as e:
            raise _translate(e) from None
        if event is not None and self.transport is not None:
            self.transport("/v1/events", json.loads(event))

    def end_session(self, notes: Optional[str] = None) -> None:
        """Ends the current session; under ``minimized``/``full`` the summary is uploaded
        (``upload_minimized_metrics()``)."""
        try:
            out = json.loads(self._rec.end_session(notes, self._want_events))
        except _native.NativeError as e:
            raise _translate(e) from None
        event = out.pop("event", None)
        if event is not None and self.transport is not None:
            self.transport("/v1/events", event)
        self.session_tier = out["tier"]
        if out["tier"] != "local":
            self.upload_minimized_metrics()
        self.session_id = None

    def refresh_metrics_summary(self) -> Dict[str, Any]:
        """Writes ``metrics_summary.json`` (if records are pending) and returns it."""
        try:
            return json.loads(self._rec.summary())
        except _native.NativeError as e:
            raise _translate(e) from None

    def upload_minimized_metrics(
        self, summary: Optional[Mapping[str, Any]] = None, *, timeout: float = 5.0
    ) -> Dict[str, Any]:
        """Returns the summary with only the allowlisted keys and, when the session's tier
        allows metrics, hands it to ``transport("/v1/metrics", ...)`` or POSTs it (waiting at
        most ``timeout`` seconds; on failure the background uploader sends it later).

        An explicit ``summary`` is filtered and returned; what is uploaded over the network
        is always the recorder's own summary, so the server never sees figures the log does
        not back.
        """
        try:
            if summary is None:
                body = json.loads(self._rec.metrics_body("minimized") or "{}")
            else:
                body = {k: summary[k] for k in MINIMIZED_SUMMARY_FIELDS if k in summary}
            tier = self.session_tier or self._current_tier()
            if tier in ("minimized", "full"):
                if self.transport is not None:
                    self.transport("/v1/metrics", body)
                else:
                    self._rec.upload_summary(tier, timeout)
        except _native.NativeError as e:
            raise _translate(e) from None
        return body

    # -- additions -----------------------------------------------------------------------------

    def flush(self, timeout: float = 10.0) -> bool:
        """Waits up to ``timeout`` seconds until every event recorded so far is delivered
        (or withheld by the tier). True when done or when nothing is in flight."""
        try:
            return self._rec.flush(float(timeout))
        except _native.NativeError as e:
            raise _translate(e) from None

    def close(self, timeout: float = 10.0) -> bool:
        """Flushes for at most ``timeout`` seconds and stops the uploader. Idempotent; what
        is not delivered yet stays in the log and leaves with the next client or
        ``agentos ccc sync``."""
        try:
            return self._rec.close(float(timeout))
        except _native.NativeError as e:
            raise _translate(e) from None

    def __enter__(self) -> "CCCClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def delivery_state(self) -> str:
        """``running``, or why background delivery is off (``disabled`` in transport mode,
        ``no_url``, ``locked``, ``closed``, ``forked``)."""
        return self._rec.delivery_state

    def preview(self, tier: Optional[str] = None) -> Dict[str, Any]:
        """What the next sync would send (``agentos ccc preview --json``)."""
        return preview(self.data_dir, tier)

    def _current_tier(self) -> str:
        cur = self._rec.current_session()
        return json.loads(cur)["tier"] if cur else "local"


# --------------------------------------------------------------------------------------------
# Module functions


def preview(data_dir: PathLike, tier: Optional[Any] = None) -> Dict[str, Any]:
    """What the next ``agentos ccc sync`` of ``data_dir`` would send, as ``agentos ccc
    preview --json``: ``{tier, events, metrics, events_held, ...}``."""
    try:
        return json.loads(
            _native.preview(os.fspath(data_dir), _tier_name(tier) if tier is not None else None)
        )
    except _native.NativeError as e:
        raise _translate(e) from None


def verify_license(
    path: PathLike,
    *,
    data_dir: Optional[PathLike] = None,
    pubkeys: Union[None, str, Mapping[str, str]] = None,
    now: Optional[int] = None,
) -> Dict[str, Any]:
    """Verifies the pack at ``path`` as ``agentos license verify`` does; returns its claims
    (plus ``kid``). Raises ``LicenseError`` with the rejection code."""
    try:
        keys = _native.parse_pubkeys(pubkeys) if isinstance(pubkeys, str) else pubkeys
        return json.loads(
            _native.verify_license(
                os.fspath(path),
                data_dir=os.fspath(data_dir) if data_dir is not None else None,
                pubkeys=dict(keys) if keys else None,
                now=now,
            )
        )
    except _native.NativeError as e:
        raise _translate(e) from None


def backfill(
    ccp_root: PathLike,
    *,
    data_dir: PathLike,
    usage_json: Optional[str] = None,
    output: Optional[PathLike] = None,
    dry_run: bool = False,
) -> Dict[str, Any]:
    """``agentos ccc backfill``: CCC usage logs, results files and an optional ``/v1/usage``
    snapshot (file or URL) under ``ccp_root`` become the ``ccp_metrics_summary.json`` document,
    returned as a dict and written to ``output`` (default: in ``data_dir``) unless ``dry_run``."""
    try:
        return json.loads(
            _native.backfill(
                os.fspath(data_dir),
                os.fspath(ccp_root),
                usage_json=usage_json,
                output=os.fspath(output) if output is not None else None,
                dry_run=dry_run,
            )
        )
    except _native.NativeError as e:
        raise _translate(e) from None


def report(
    kind: str = "daily",
    *,
    data_dir: PathLike,
    since: Optional[str] = None,
    until: Optional[str] = None,
    timezone: Optional[str] = None,
    start_of_week: Optional[str] = None,
    project: Optional[str] = None,
    session_id: Optional[str] = None,
    ccusage_format: bool = False,
) -> Dict[str, Any]:
    """``agentos report KIND --json`` over everything ingested into ``data_dir``
    (``daily``, ``weekly``, ``monthly``, ``session`` or ``blocks``); ``ccusage_format`` gives
    ccusage's JSON shape (``--json-format ccusage``)."""
    try:
        return json.loads(
            _native.report(
                os.fspath(data_dir),
                kind,
                since=since,
                until=until,
                timezone=timezone,
                start_of_week=start_of_week,
                project=project,
                session_id=session_id,
                ccusage_format=ccusage_format,
            )
        )
    except _native.NativeError as e:
        raise _translate(e) from None
