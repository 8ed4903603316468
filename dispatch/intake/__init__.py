"""Other channels in, public pages out: Open311 apps, the 110 hand-over, the mayor's mailbox (web
letters), the citizens' status look-up and the public disclosure of closed tickets."""
