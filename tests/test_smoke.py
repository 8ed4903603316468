from dispatch import schemas
from dispatch.states import Action, TicketState
from hotline.context import HotlineContext
from tests.conftest import Staff, subcategory_id


def test_dispatch_sets_deadline_in_working_days(ctx: HotlineContext, staff: Staff) -> None:
    with ctx.unit_of_work() as session:
        tickets = ctx.tickets(session)
        ticket = tickets.register(
            staff.operator, schemas.TicketCreate(content="停水了", caller_phone="13800001234")
        )
        body = schemas.DispatchBody(department="sw", subcategory_id=subcategory_id(session, "停水"))
        tickets.act(ticket.number, staff.operator, Action.DISPATCH, body)
        assert ticket.state == TicketState.DISPATCHED
        assert ticket.number == "20261116-0001"
        assert str(ticket.deadline) == "2026-11-17 17:30:00"
