"""Imports every package's models so that `Base.metadata` knows all tables (for Alembic and tests)."""

from callcenter import models as callcenter_models
from dispatch import models as dispatch_models
from hotline.accounts import models as account_models
from hotline.db import Base
from knowledge_base import models as kb_models
from sla import models as sla_models

metadata = Base.metadata
__all__ = ["account_models", "callcenter_models", "dispatch_models", "kb_models", "metadata", "sla_models"]
