"""`hotline sip-proxy`: Kamailio on a machine of its own (split mode, `[callcenter] kamailio = "own"`).

The SIP address citizens and seat phones use then stays where it is when a standby controller takes
over. This process keeps Kamailio running (restarted within a second or two, the seat phones'
registrations given back), with the media hosts' workers in its dispatcher list; the controllers read
the registrations through its control socket at `kamailio_control`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from callcenter.kamailio import Kamailio
from callcenter.runtime import KamailioWatchdog
from callcenter.settings import CallCenterSettings
from core.clock import Clock

log = logging.getLogger("callcenter.sipproxy")


async def run_sip_proxy(cc: CallCenterSettings, runtime_dir: Path, clock: Clock, stop: asyncio.Event) -> int:
    if not cc.media_hosts:
        raise ValueError(
            "hotline sip-proxy needs [[callcenter.media_hosts]]: its dispatcher sends calls there"
        )
    kamailio = Kamailio(cc, runtime_dir, [])
    await asyncio.to_thread(kamailio.start)
    watchdog = asyncio.create_task(KamailioWatchdog(kamailio, clock, kamailio.fresh_registrations).run())
    log.info(
        "SIP at %s:%d; %d media workers on %d host(s); control at %s",
        cc.sip_host, cc.sip_port, len(cc.worker_targets()), len(cc.media_hosts), cc.kamailio_control,
    )  # fmt: skip
    try:
        await stop.wait()
    finally:
        watchdog.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watchdog
        await asyncio.to_thread(kamailio.stop)
    return 0
