"""Input and output shapes of the ticket core (pydantic), shared by the service and the JSON API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from core.web import Flag, IsoDate
from dispatch.models import Channel
from dispatch.states import Action, TicketState

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, pattern=r"\S", max_length=4000)]
ShortText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, pattern=r"\S", max_length=256)
]
# As long as their columns (tickets.caller_name, knowledge_base_entries.external_id): 64.
PersonName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, pattern=r"\S", max_length=64)
]
EntryId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, pattern=r"\S", max_length=64)]
Note = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] | None
Phone = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\+?[0-9][0-9-]{2,19}$")]
DepartmentCode = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[a-z0-9_]{1,32}$")]
TicketNumber = Annotated[str, StringConstraints(pattern=r"^[0-9]{8}-[0-9]{3,8}$")]
# Row ids fit a 32-bit INTEGER column on every backend; a larger one is bad input, not a crash.
MAX_ID = 2_147_483_647


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TicketCreate(_Body):
    content: Text
    channel: Channel = Channel.PHONE
    caller_phone: Phone | None = None
    caller_name: PersonName | None = None
    address: ShortText | None = None
    category_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    subcategory_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    private: Flag = False
    # The citizen agreed to the public disclosure of the matter and its result (asked on every channel).
    disclosure_consent: Flag = False


class NoteBody(_Body):
    note: Note = None


class AnswerOnSpotBody(_Body):
    answer: Text
    kb_entry_id: EntryId | None = None


class DispatchBody(_Body):
    department: DepartmentCode
    subcategory_id: int = Field(ge=1, le=MAX_ID)
    assisting: list[DepartmentCode] = Field(default_factory=list, max_length=10)
    note: Note = None


class RedispatchBody(_Body):
    department: DepartmentCode
    subcategory_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    note: Note = None


class ReplyBody(_Body):
    result: Text


class ReasonBody(_Body):
    reason: Text


class ExtensionBody(_Body):
    days: int = Field(ge=1, le=60)
    reason: Text


class CallbackBody(_Body):
    result: Literal["satisfied", "basically_satisfied", "dissatisfied"]
    solved: Flag | None = None
    note: Note = None


class MergeBody(_Body):
    into: TicketNumber
    note: Note = None


class AddCallerBody(_Body):
    """附加来电: what the further caller said, who they are, and the call it came on."""

    content: Text
    caller_phone: Phone | None = None
    caller_name: PersonName | None = None
    call_uid: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,40}$")] | None = None


# The body each action takes; the API builds one endpoint per entry.
ACTION_BODIES: dict[Action, type[_Body]] = {
    Action.ANSWER_ON_SPOT: AnswerOnSpotBody,
    Action.DISPATCH: DispatchBody,
    Action.SIGN: NoteBody,
    Action.REPLY: ReplyBody,
    Action.RETURN: ReasonBody,
    Action.REDISPATCH: RedispatchBody,
    Action.REQUEST_EXTENSION: ExtensionBody,
    Action.APPROVE_EXTENSION: NoteBody,
    Action.REFUSE_EXTENSION: ReasonBody,
    Action.SUPERVISE: NoteBody,
    Action.RECORD_CALLBACK: CallbackBody,
    Action.REOPEN: ReasonBody,
    Action.ARCHIVE: NoteBody,
    Action.MERGE: MergeBody,
    Action.APPROVE_REPLY: NoteBody,
    Action.REJECT_REPLY: ReasonBody,
    Action.ADD_CALLER: AddCallerBody,
}


class TicketFilter(_Body):
    state: list[TicketState] = Field(default_factory=list)
    department: DepartmentCode | None = None
    category_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    created_from: IsoDate | None = None
    created_to: IsoDate | None = None
    overdue: Flag | None = None
    caller_phone: Phone | None = None
    # A ticket number, or words in the content or the address.
    text: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, pattern=r"\S", max_length=100)]
        | None
    ) = None
    limit: int = Field(default=50, ge=1, le=500)
    offset: int = Field(default=0, ge=0, le=10_000_000)


class DepartmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    code: str
    name: str
    kind: str


class EventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    seq: int
    action: str
    actor_name: str
    at: datetime
    from_state: str | None
    to_state: str
    note: str | None
    data: dict[str, object]


class CallerOut(BaseModel):
    phone: str | None
    name: str | None
    content: str
    at: datetime
    by: str
    call_count: int


class TicketOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    number: str
    state: str
    state_label: str
    channel: str
    caller_phone: str | None
    caller_name: str | None
    address: str | None
    content: str
    category: str | None
    subcategory: str | None
    subcategory_id: int | None
    lead_department: DepartmentOut | None
    assisting_departments: list[DepartmentOut]
    deadline: datetime | None
    first_reply_due: datetime | None
    created_at: datetime
    updated_at: datetime
    dispatched_at: datetime | None
    signed_at: datetime | None
    replied_at: datetime | None
    closed_at: datetime | None
    reply_text: str | None
    return_reason: str | None
    kb_entry_id: str | None
    reopen_count: int
    supervision_count: int
    extension_requested_days: int | None
    extension_reason: str | None
    callback_result: str | None
    merged_into: str | None
    private: bool
    disclosure_consent: bool
    reply_approved_at: datetime | None
    reply_approved_by: str | None
    overdue: bool
    extra_callers: list[CallerOut] = Field(default_factory=list)  # 附加来电
    repeat_calls: int = 1  # the most calls one number made about the matter (3+: 重复来电)


class TicketPage(BaseModel):
    total: int
    items: list[TicketOut]
