"""The loopback fake OpenAI provider lives in the package (the demo uses it too); tests import it here."""
from sample_data.fake_provider import Behavior, FakeOpenAI, RecordedRequest

__all__ = ["Behavior", "FakeOpenAI", "RecordedRequest"]
