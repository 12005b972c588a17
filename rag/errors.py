"""Typed errors; str(error) is shown to the user as-is (what, where, what next)."""


class PolicyRagError(Exception):
    """Base class of every error the user should see as a message, not a traceback."""


class DocumentReadError(PolicyRagError):
    """A corpus file could not be read or decoded: names the file and the reason."""


class UnsupportedFormatError(DocumentReadError):
    """The file's extension is not one policy-rag reads."""


class IndexMissingError(PolicyRagError):
    """No index in the data dir yet."""


class IndexMismatchError(PolicyRagError):
    """The index was built with another embedder or parser version."""


class IndexLockedError(PolicyRagError):
    """Another ingest holds the index lock."""


class LLMError(PolicyRagError):
    """The language model endpoint failed: names the endpoint and what to check (never the API key)."""


class ConfigError(PolicyRagError):
    """A setting is missing or invalid."""


class IngestInterrupted(PolicyRagError):
    """SIGTERM or Ctrl-C stopped an ingest between two index writes; the next ingest completes it."""

    def __init__(self, signum: int, committed: int = 0) -> None:
        import signal

        self.signum = signum
        name = signal.Signals(signum).name
        super().__init__(f"ingest stopped by {name} after {committed} documents were committed; every document "
                         "is wholly old or new. Run `policy-rag ingest` again to complete it")

    @property
    def exit_code(self) -> int:
        """128 + the signal number, as a shell reports a process the signal ended (130 Ctrl-C, 143 SIGTERM)."""
        return 128 + self.signum
