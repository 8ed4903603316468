"""The ground floor: database, migrations, clock, events, audit, errors and accounts, shared by every
domain. It imports no domain package."""
