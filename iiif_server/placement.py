"""Which worker of a pool an affinity key (an image) goes to, and stays on.

Work for one image goes to one worker, whose cache of decoded images is then
reused. A new key goes to the worker with the least work ahead: the keys it
was asked for lately plus the tasks it has now. A hash alone can put the four
images a gallery opens at once on one worker while the other idles, and the
load of the moment alone depends on which of their sessions happens to wait
for a tile. Bounded: the least recently used keys are forgotten first (a
forgotten key is placed afresh; its decodes may be lost).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

# Keys remembered.
MAX_KEYS = 65536
# Keys asked for within this many seconds count as the work their worker has ahead.
IN_USE_SECONDS = 10.0
# A preferred key stands in for a task's own while it was used this lately.
PREFERRED_SECONDS = 60.0


@dataclass(eq=False)
class _Assignment:
    index: int  # of the worker
    weight: int  # 1, or 0 for a light key: how much it counts when keys are placed
    used: float  # when it was last asked for (the pool's clock)


class Placement:
    """Key -> worker index for a pool of `size` workers."""

    def __init__(self, size: int) -> None:
        self.size = size
        # Least recently used first (and forgotten first).
        self._assigned: OrderedDict[str, _Assignment] = OrderedDict()

    def preferred(self, prefer: str, now: float) -> bool | None:
        """Whether `prefer` is light, if it was asked for lately; None: not to be used."""
        held = self._assigned.get(prefer)
        if held is None or now - held.used > PREFERRED_SECONDS:
            return None
        return held.weight == 0

    def place(self, key: str, light: bool, tasks: Sequence[int], now: float) -> int:
        """The worker of `key`, placing it if new; `tasks[i]`: what worker i has now.

        A light key (a few small tasks, such as the coarse tiles of one image)
        goes where nothing waits now and does not count for later keys.
        """
        assigned = self._assigned.get(key)
        if assigned is None:
            in_use = self._keys_in_use(now)
            if light:
                index = min(range(self.size), key=lambda i: (tasks[i], in_use[i], i))
            else:
                index = min(range(self.size), key=lambda i: (in_use[i] + tasks[i], in_use[i], i))
            if len(self._assigned) >= MAX_KEYS:
                self._assigned.popitem(last=False)
            assigned = _Assignment(index, 0 if light else 1, now)
        else:
            assigned.used = now
        self._assigned[key] = assigned
        self._assigned.move_to_end(key)
        return assigned.index

    def _keys_in_use(self, now: float) -> list[int]:
        """Per worker, the weight of its keys asked for in the last `IN_USE_SECONDS`."""
        in_use = [0] * self.size
        for assignment in reversed(self._assigned.values()):  # most recently used first
            if now - assignment.used > IN_USE_SECONDS:
                break
            in_use[assignment.index] += assignment.weight
        return in_use
