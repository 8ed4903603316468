"""Callback surveys (回访) and missed-call callbacks (回拨).

- `models`: the callback queue, its attempts, opted-out numbers, web survey links, the SMS outbox.
- `service`: enqueueing replied tickets, claiming the next due callback (claimed in the database before
  anyone dials), results as ticket events through the state machine, retries within calling hours.
- `runner`: places the automatic survey calls through the call centre (`hotline serve` schedules it).
- `links` and `sms`: the web survey as a third way, sent through a pluggable SMS gateway.
- `stats`: 满意率, 回访率 and reopen counts as SQL.
"""
