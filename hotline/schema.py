"""Imports every package's models so that `Base.metadata` knows all tables (for Alembic and tests)."""

from callcenter import models as callcenter_models
from callcenter.asr import models as asr_models
from core import audit as audit_models
from core import departments as department_models
from core.accounts import models as account_models
from core.db import Base
from dispatch import models as dispatch_models
from dispatch import routing_words as routing_word_models
from dispatch.attachments import models as attachment_models
from dispatch.callbacks import models as callback_models
from dispatch.intake import models as intake_models
from knowledge_base import models as kb_models
from sla import models as sla_models
from sla import overrides as calendar_override_models

metadata = Base.metadata
__all__ = [
    "account_models",
    "asr_models",
    "attachment_models",
    "audit_models",
    "calendar_override_models",
    "callback_models",
    "callcenter_models",
    "department_models",
    "dispatch_models",
    "intake_models",
    "kb_models",
    "metadata",
    "routing_word_models",
    "sla_models",
]
