"""Reproducer (plain Textual, no paceui): keys typed into an Input in a burst while the UI is busy are
applied out of order: Backspace and arrows land after later letters, so the field ends as the wrong text.

Usage: python benchmarks/textual_key_order.py [--trials 20] [--busy-ms 30] [--gap-ms 5]
Each trial: a fresh App with one Input inside two containers; a thread posts Key events as the terminal
driver's input thread does (``asyncio.run_coroutine_threadsafe(app._post_message(key), loop)``,
``--gap-ms`` apart) while an interval timer keeps the UI thread busy ``--busy-ms`` ms out of every 50 ms;
the Input's final value is compared with the text the same keys give when applied in order. Prints the
mismatches and the Textual version; exits 1 when any.

Where: after the App's message queue. The keys enter it in order (each ``run_coroutine_threadsafe`` task
only queues its key, and the tasks start in the order they were made); they are then dispatched by
``App.on_event`` (priority bindings, then forwarded to the focused widget), and a key that is one of the
Input's bindings (backspace, left, right) is not handled by the Input directly but bubbles back up to the
App's ``_check_bindings``, a longer path than a printable key's. Observed on Textual 8.2.8 (paceui pins
``textual>=8.2,<8.3``): letters are reordered too, so the binding path is a lead, not the whole story. This
script is what the upstream report carries (see NOTES_fe2.md); paceui's side is to keep the UI thread idle.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
import time


def expected(keys: list[str]) -> str:
    """The text and cursor the keys give applied one after the other (insert, backspace, left, right)."""
    text, cur = "", 0
    for k in keys:
        if k == "backspace":
            if cur:
                text, cur = text[:cur - 1] + text[cur:], cur - 1
        elif k == "left":
            cur = max(cur - 1, 0)
        elif k == "right":
            cur = min(cur + 1, len(text))
        else:
            text, cur = text[:cur] + k + text[cur:], cur + 1
    return text


async def trial(keys: list[str], busy_ms: float, gap_ms: float) -> str:
    from textual import events
    from textual.app import App, ComposeResult
    from textual.containers import Horizontal, Vertical
    from textual.widgets import Input

    class Plain(App[None]):
        def compose(self) -> ComposeResult:
            with Vertical(), Horizontal():
                yield Input(id="field")

        def on_mount(self) -> None:
            self.query_one(Input).focus()
            self.set_interval(0.05, lambda: time.sleep(busy_ms / 1e3))  # a busy UI thread

    app = Plain()
    async with app.run_test() as pilot:
        await pilot.pause(0.2)

        loop = asyncio.get_running_loop()

        def typist() -> None:  # exactly as the terminal driver's input thread (textual/driver.py send_message)
            for k in keys:
                ev = events.Key(k, k if len(k) == 1 else None)
                ev.set_sender(app)
                asyncio.run_coroutine_threadsafe(app._post_message(ev), loop=loop)
                time.sleep(gap_ms / 1e3)
        t = threading.Thread(target=typist)
        t.start()
        while t.is_alive():
            await asyncio.sleep(0.01)
        await pilot.pause(0.5)
        return str(app.query_one(Input).value)


def main() -> int:
    import textual

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--busy-ms", type=float, default=30.0)
    ap.add_argument("--gap-ms", type=float, default=5.0)
    args = ap.parse_args()
    keys = list("cutoff") + ["backspace"] * 3 + list("ff") + ["left", "left"] + list("x") + ["right"] + list("yz")
    want = expected(keys)
    bad = 0
    for i in range(args.trials):
        got = asyncio.run(trial(keys, args.busy_ms, args.gap_ms))
        if got != want:
            bad += 1
            print(f"trial {i}: {got!r} instead of {want!r}")
    print(f"textual {textual.__version__}: {bad}/{args.trials} trials applied the keys out of order "
          f"(busy {args.busy_ms:g} ms / 50 ms, keys {args.gap_ms:g} ms apart)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
