"""Notices: one message per organisation per round, rendered into the outbox and committed
before anything is sent; then the outbox is sent over SMTP, each message exactly once.

  render.py    the notice itself: templates, guidance, hosts CSV, header and cell guards
  plan.py      a round: which cases are due, their notices rendered and committed (outbox rows)
  send.py      the sender and its exactly-once protocol (explained there), pipelined SMTP
  smtp.py      the wire: target, payload, failure kinds
  recovery.py  settling the claims a stopped run left
  bounces.py   delivery reports
"""

from exhunt.cases.notify.plan import plan_round
from exhunt.cases.notify.render import Renderer
from exhunt.cases.notify.send import Sender
from exhunt.cases.notify.smtp import SmtpTarget

__all__ = ["Renderer", "Sender", "SmtpTarget", "plan_round"]
