"""All configuration in one place: ``RENOWN_*`` environment variables and an optional TOML file.

Precedence, highest first: explicit arguments (the CLI), environment variables, the
TOML file named by ``RENOWN_CONFIG`` (or ``--config``), the defaults below. Values that
are unsafe or contradict each other are refused at start-up with a message that names
the setting, rather than discovered hours later by a consumer that misbehaves.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from ingest.decode import is_account_id
from scoring.detect import DETECTORS
from scoring.evidence import DEFAULT_KIND_WEIGHTS, KINDS

CONFIG_ENV = "RENOWN_CONFIG"


class SettingsError(ValueError):
    """Configuration refused at start-up; the message lists every problem found."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="RENOWN_", extra="forbid", validate_default=True, frozen=True
    )

    database_url: str = Field(
        default="sqlite:///renown.db",
        description="SQLAlchemy URL; SQLite file in the working directory by default, "
        "postgresql://user@host/db in production.",
    )
    database_pool_size: int = Field(
        default=10,
        ge=1,
        le=200,
        description="PostgreSQL connections each process keeps open (an API worker answering "
        "from the database at concurrency C wants about C); as many again may be opened "
        "for bursts and closed after.",
    )
    kafka_bootstrap: str | None = Field(
        default=None,
        description="Comma-separated host:port list. Unset: `renown demo` starts the embedded "
        "broker; `renown ingest` and `renown produce` refuse to run.",
    )
    topic: str = Field(default="renown.events", description="The topic events arrive on.")
    topic_partitions: int = Field(
        default=4, ge=1, le=10_000, description="Partitions when Renown creates the topic."
    )
    dead_letter_topic: str | None = Field(
        default=None, description="Also forward dead letters here (the database always keeps them)."
    )
    group_id: str = Field(default="renown-ingest", min_length=1, max_length=255)
    batch_size: int = Field(
        default=1000,
        ge=1,
        le=100_000,
        description="Messages applied per database transaction at most.",
    )
    poll_timeout_ms: int = Field(default=500, ge=10, le=60_000)
    session_timeout_ms: int = Field(default=10_000, ge=1_000, le=300_000)
    heartbeat_interval_ms: int = Field(default=3_000, ge=100, le=100_000)
    # NoDecode: RENOWN_SEEDS is a comma-separated list, not JSON.
    seeds: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Pre-trusted accounts (moderators, verified humans) that trust flows from.",
    )
    decay_half_life_days: float = Field(default=180.0, gt=0, le=36_500)
    teleport: float = Field(
        default=0.15, gt=0, lt=1, description="Probability of returning to the seeds at each step."
    )
    kind_weights: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_KIND_WEIGHTS),
        description="Base weight per kind of evidence (JSON in RENOWN_KIND_WEIGHTS); kinds "
        "left out keep their default, 0 ignores a kind.",
    )
    distrust_weight: float = Field(
        default=1.0,
        ge=0,
        le=10,
        description="Strength of distrust applied after propagation (0 turns it off).",
    )
    distrust_passes: int = Field(
        default=2,
        ge=1,
        le=5,
        description="1: distrust applied once after propagation; 2+: propagate again with "
        "distrusted accounts passing on only the trust distrust left them.",
    )
    closed_group_retention: float = Field(
        default=0.8,
        ge=0,
        le=1,
        description="Cut the internal edges of seedless communities that keep at least this "
        "share of their outgoing trust inside (vote rings, sybil farms); 0 turns it off.",
    )
    # Moderation (docs/moderation.md).
    detectors: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: sorted(DETECTORS),
        description="Abuse detectors run every epoch (comma-separated kinds; empty: none).",
    )
    moderators: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Who may raise, confirm and dismiss flags and decide appeals "
        "(comma-separated names); none configured refuses every moderator action.",
    )
    # renown run (docs/operations.md): ingest, scoring and publishing in one process.
    score_interval_s: float = Field(
        default=900.0,
        gt=0,
        le=7 * 24 * 3600,
        description="How often renown run scores a new epoch, when events or moderator "
        "decisions arrived since the last one (seconds).",
    )
    # The HTTP API (renown serve; docs/api.md).
    api_host: str = Field(default="127.0.0.1", description="Address renown serve binds.")
    api_port: int = Field(default=8080, ge=1, le=65535)
    api_workers: int = Field(default=1, ge=1, le=64, description="uvicorn worker processes.")
    api_rate_public: int = Field(
        default=120,
        ge=1,
        le=1_000_000,
        description="Requests per minute a client without an API key may make (per IP).",
    )
    api_rate_key: int = Field(
        default=6_000,
        ge=1,
        le=10_000_000,
        description="Requests per minute per API key (marketplaces needing more get a key).",
    )
    api_max_batch: int = Field(
        default=1_000, ge=1, le=10_000, description="Accounts per batch score lookup."
    )
    api_cache_rows: int = Field(
        default=10_000_000,
        ge=0,
        description="Score rows (accounts x domains) of the latest epoch each API worker "
        "keeps in memory for score lookups (about 90 bytes each: 357 MB for 1M accounts x "
        "4 domains); a larger epoch is served from the database; 0 turns the copy off.",
    )
    api_cache_ttl: float = Field(
        default=1.0,
        ge=0,
        le=3600,
        description="Seconds an API worker goes on serving the epoch it knows before "
        "checking for a newer one.",
    )
    nep413_recipient: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description="The recipient a contributor's NEP-413 signed message must name "
        "(docs/api.md); default: contract_id, else 'renown'. Give each deployment its own.",
    )
    api_key_ttl: float = Field(
        default=5.0,
        ge=0,
        le=3600,
        description="Seconds an API worker trusts a key it has verified before reading it "
        "again: a revoked key is refused within this time.",
    )
    # Probes for the processes without an HTTP API of their own (renown/health.py).
    health_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="Port of /healthz and /metrics for ingest, chain-source, run, score "
        "--every and publish --every (unset: none; 0: any free port).",
    )
    health_host: str = Field(
        default="127.0.0.1", description="Address the health server binds (0.0.0.0 in a pod)."
    )
    health_stale_s: float = Field(
        default=60.0,
        gt=0,
        le=86_400,
        description="A loop that reported no progress for this long answers 503 on /healthz.",
    )
    # Publishing to NEAR (renown publish / verify; docs/contract.md).
    near_rpc_url: str = Field(
        default="https://rpc.testnet.near.org",
        description="NEAR JSON-RPC endpoint (testnet by default; mainnet or a private node "
        "in production).",
    )
    contract_id: str | None = Field(
        default=None, description="Account of the deployed snapshot contract."
    )
    publisher_account_id: str | None = Field(
        default=None, description="The account the contract accepts publications from."
    )
    publisher_private_key: SecretStr | None = Field(
        default=None,
        description="ed25519:... key of the publisher: a function-call access key limited "
        "to publish and store_scores. Keep it in a secret store, not in a file.",
    )
    publish_top_n: int = Field(
        default=1000,
        ge=0,
        le=1_000_000,
        description="Scores stored on chain per domain and epoch (the top N by rank).",
    )
    publish_batch_size: int = Field(
        default=50, ge=1, le=100, description="Scores per store_scores transaction."
    )
    snapshot_uri_template: str = Field(
        default="",
        description="Where the full table of an epoch is served, with {epoch}; recorded on "
        "chain with the root.",
    )
    snapshot_topic: str | None = Field(
        default="renown.snapshots",
        description="Kafka topic the publications are produced to (needs kafka_bootstrap).",
    )
    # The NEAR chain source (renown chain-source; docs/chain.md). It reads near_rpc_url.
    chain_contracts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Contracts whose NEP-297 event logs the chain source produces to Kafka "
        "(comma-separated account ids).",
    )
    chain_start_height: int | None = Field(
        default=None,
        ge=0,
        description="First block height the chain source reads when it has no cursor yet; "
        "unset: it starts at the current final head.",
    )
    chain_poll_s: float = Field(
        default=1.0, gt=0, le=300, description="Seconds between looks at the final head."
    )
    chain_batch_blocks: int = Field(
        default=50,
        ge=1,
        le=10_000,
        description="Blocks read between two flushes of the producer and saves of the "
        "cursor while catching up (at the head: every block).",
    )
    chain_rpc_timeout_s: float = Field(
        default=30.0, gt=0, le=600, description="HTTP timeout of one JSON-RPC request."
    )
    tolerance: float = Field(default=1e-10, gt=0, le=1e-3)
    max_iterations: int = Field(default=1000, ge=1, le=100_000)

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        try:
            url = make_url(value)
        except ArgumentError as exc:
            raise ValueError(f"not a database URL: {exc}") from None
        if url.get_backend_name() not in ("sqlite", "postgresql"):
            raise ValueError("only sqlite:// and postgresql:// databases are supported")
        return value

    @field_validator("snapshot_uri_template")
    @classmethod
    def _ascii_uri(cls, value: str) -> str:
        # URIs are ASCII (RFC 3986: percent-encode the rest); the contract's JSON parser
        # also mangles characters outside the BMP (contract/README.md).
        if not value.isascii():
            raise ValueError("must be ASCII: percent-encode other characters")
        if value and "{epoch}" not in value:
            raise ValueError("must contain {epoch}, e.g. https://host/v1/snapshots/{epoch}.jsonl")
        return value

    @field_validator("kafka_bootstrap")
    @classmethod
    def _bootstrap_list(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        for server in value.split(","):
            host, sep, port = server.strip().rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"{server!r} is not host:port")
        return ",".join(s.strip() for s in value.split(","))

    @field_validator("topic", "dead_letter_topic", "snapshot_topic")
    @classmethod
    def _topic_name(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if (
            not value
            or len(value) > 249
            or any(not (c.isascii() and (c.isalnum() or c in "._-")) for c in value)
            or value in (".", "..")
        ):
            raise ValueError(f"{value!r} is not a valid Kafka topic name")
        return value

    @field_validator("detectors", "moderators", "chain_contracts", mode="before")
    @classmethod
    def _split_names(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [s.strip() for s in value.split(",") if s.strip()]
        return value

    @field_validator("detectors")
    @classmethod
    def _known_detectors(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(DETECTORS))
        if unknown:
            raise ValueError(f"unknown detectors {unknown}; known: {sorted(DETECTORS)}")
        return sorted(set(value))

    @field_validator("chain_contracts")
    @classmethod
    def _contract_ids(cls, value: list[str]) -> list[str]:
        bad = [c for c in value if not is_account_id(c)]
        if bad:
            raise ValueError(f"not NEAR account ids: {bad}")
        return list(dict.fromkeys(value))

    @field_validator("moderators")
    @classmethod
    def _moderator_names(cls, value: list[str]) -> list[str]:
        bad = [m for m in value if not re.match(r"^[A-Za-z0-9._@+-]{1,64}$", m)]
        if bad:
            raise ValueError(f"moderator names must be [A-Za-z0-9._@+-], 1-64 long: {bad}")
        return list(dict.fromkeys(value))

    @field_validator("seeds", mode="before")
    @classmethod
    def _split_seeds(cls, value: Any) -> Any:
        if isinstance(value, str):  # RENOWN_SEEDS=a.near,b.near
            return [s.strip() for s in value.split(",") if s.strip()]
        return value

    @field_validator("seeds")
    @classmethod
    def _valid_seeds(cls, value: list[str]) -> list[str]:
        bad = [s for s in value if not is_account_id(s)]
        if bad:
            raise ValueError(f"not NEAR account ids: {bad}")
        return list(dict.fromkeys(value))

    @field_validator("kind_weights")
    @classmethod
    def _known_kinds(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(KINDS))
        if unknown:
            raise ValueError(f"unknown evidence kinds {unknown}; known: {list(KINDS)}")
        bad = {k: w for k, w in value.items() if not 0 <= w <= 100}
        if bad:
            raise ValueError(f"kind weights must be in [0, 100]: {bad}")
        return {**DEFAULT_KIND_WEIGHTS, **value}

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.dead_letter_topic is not None and self.dead_letter_topic == self.topic:
            raise ValueError("dead_letter_topic must differ from topic (it would loop)")
        if self.heartbeat_interval_ms * 3 > self.session_timeout_ms:
            raise ValueError(
                "heartbeat_interval_ms must be at most a third of session_timeout_ms, "
                "or consumers are evicted from the group between heartbeats"
            )
        if self.poll_timeout_ms >= self.session_timeout_ms:
            raise ValueError("poll_timeout_ms must be below session_timeout_ms")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = os.environ.get(CONFIG_ENV)
        if path:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(path)))
        return tuple(sources)

    def redacted(self) -> dict[str, Any]:
        """The settings for logs: the database password hidden."""
        data = self.model_dump()
        data["database_url"] = make_url(self.database_url).render_as_string(hide_password=True)
        if self.publisher_private_key is not None:
            data["publisher_private_key"] = "**********"
        return data


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Build the settings once, in ``main()``, turning every problem into one clear error."""
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise SettingsError(f"config file {str(path)!r} does not exist")
        os.environ[CONFIG_ENV] = str(path)
    elif (env_path := os.environ.get(CONFIG_ENV)) and not Path(env_path).is_file():
        raise SettingsError(f"{CONFIG_ENV}={env_path!r}: no such file")
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "settings"
            env = f"RENOWN_{where.upper()}" if err["loc"] else "settings"
            problems.append(f"  {where} ({env}): {err['msg']}")
        raise SettingsError("invalid configuration:\n" + "\n".join(problems)) from None
    except (OSError, ValueError) as exc:  # an unreadable or invalid TOML file
        raise SettingsError(f"could not read the configuration: {exc}") from None
