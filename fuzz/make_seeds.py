#!/usr/bin/env python3
"""Writes the hand-made seed inputs of ump's fuzz targets into fuzz/corpus/<target>/seed-*.

Each seed is one named scenario (the interleaving it pins down), spelled with the opcodes
of ops_fuzzer.cpp and cell_fuzzer.cpp; keep the tables below in step with their enums.
Inputs found by libFuzzer live beside them (hex names) and are not touched here.

    python3 fuzz/make_seeds.py            # rewrites every seed-* file
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# --- ops_fuzzer ----------------------------------------------------------------------------
OPS = [
    "make_channel", "clone_client", "move_client", "drop_client", "downgrade", "clone_weak",
    "drop_weak", "upgrade", "req_async", "post", "make_poster", "drop_poster", "try_wait",
    "server_wait_zero", "reply", "fail", "drop_ctx", "move_ctx", "drop_wait_reply",
    "check_wait_reply", "wait_reply_zero", "await_wait_reply", "areq", "cancel_await",
    "server_async_wait", "server_async_cancel", "drop_server", "run_scheduled", "arm_throw",
]
DEFERRED = 128  # await_wait_reply / areq: resume through the deferred scheduler
OP = {name: i for i, name in enumerate(OPS)}
NG, PLAIN = 0, 1


def ops(*steps, ch=NG):
    """steps: (name, arg) pairs or bare names (arg 0); ch: the channel they act on."""
    out = bytearray()
    for s in steps:
        name, arg = (s, 0) if isinstance(s, str) else s
        c = ch
        if name.endswith("@plain"):
            name, c = name[: -len("@plain")], PLAIN
        out += bytes([(OP[name] << 1) | c, arg & 0xFF])
    return bytes(out)


def sd(slot_src, slot_dst):
    """Two 2-bit slot numbers (source, destination) in one argument byte."""
    return (slot_src & 3) | ((slot_dst & 3) << 2)


def req(c=0, wr=0):
    return ("req_async", (c & 3) | (wr << 2))


def fail(ctx=0, e=5):
    return ("fail", ctx | (e << 3))


OPS_SEEDS = {
    "reply_delivered": [req(), "try_wait", "reply", "check_wait_reply"],
    "fail_delivers_app_error": [req(), "try_wait", fail(0, 7), "check_wait_reply"],
    "context_dropped_no_reply": [req(), "try_wait", "drop_ctx", "check_wait_reply"],
    "ready_checked_before_reply": [req(), "check_wait_reply", "try_wait", "check_wait_reply",
                                   "reply", "check_wait_reply"],
    "wait_reply_dropped_after_take_origin_disappeared": [req(), "try_wait", "drop_wait_reply", "reply"],
    "wait_reply_dropped_before_take_still_delivered": [req(), "drop_wait_reply", "try_wait", fail(0, 3)],
    "wait_reply_dropped_after_reply": [req(), "try_wait", "reply", "drop_wait_reply"],
    "server_dropped_with_queued_requests_and_posts": [req(0, 0), "post", req(0, 1), "drop_server",
                                                      "check_wait_reply", ("check_wait_reply", 1)],
    "send_after_server_gone": ["drop_server", req(), "post", "check_wait_reply"],
    "server_dropped_while_holding_context": [req(), "try_wait", "drop_server", "reply", "check_wait_reply"],
    "fifo_posts_and_requests_interleaved": ["post", req(0, 0), "post", ("clone_client", sd(0, 1)),
                                            ("post", 1), req(1, 1), "post", "try_wait", ("try_wait", 1),
                                            "try_wait", ("try_wait", 2), "try_wait", ("try_wait", 3),
                                            "try_wait", ("reply", 1), ("reply", 2), "check_wait_reply",
                                            ("check_wait_reply", 1)],
    "clients_disappeared_after_queue_drained": ["post", req(), ("drop_client", 0), "try_wait",
                                                ("try_wait", 1), ("try_wait", 2), ("reply", 1),
                                                "check_wait_reply"],
    "upgrade_after_last_strong_dropped": [("downgrade", sd(0, 0)), ("drop_client", 0),
                                          ("upgrade", sd(0, 1)), "try_wait", ("upgrade", sd(0, 2))],
    "upgrade_while_strong_then_first_dropped": [("downgrade", sd(0, 1)), ("upgrade", sd(1, 2)),
                                                ("drop_client", 0), req(2, 0), "try_wait", "reply",
                                                "check_wait_reply", ("drop_client", 2), "try_wait"],
    "weak_clone_outlives_clients": [("downgrade", sd(0, 0)), ("clone_weak", sd(0, 2)), ("drop_weak", 0),
                                    ("drop_client", 0), ("upgrade", sd(2, 1)), "try_wait"],
    "poster_keeps_clients_alive": [("make_poster", sd(0, 0)), ("drop_client", 0), ("post", 4),
                                   "try_wait", "try_wait", ("drop_poster", 0), "try_wait"],
    "await_before_reply_resumes_inline": [req(), ("await_wait_reply", 0), "try_wait", "reply"],
    "await_after_reply_ready_at_once": [req(), "try_wait", "reply", ("await_wait_reply", 0)],
    "areq_then_server_dropped": [("areq", 0), ("areq", 4), "drop_server"],
    "areq_after_server_gone": ["drop_server", ("areq", 0)],
    "areq_cancelled_then_reply_origin_disappeared": [("areq", 0), "try_wait", ("cancel_await", 0), "reply"],
    "areq_cancelled_before_take": [("areq", 0), ("cancel_await", 0), "try_wait", "drop_ctx"],
    "server_coroutine_woken_by_post_and_request": ["server_async_wait", "post", "server_async_wait",
                                                   req(), "reply", "check_wait_reply"],
    "server_coroutine_woken_by_last_client_drop": ["server_async_wait", ("drop_client", 0)],
    "server_coroutine_ready_at_once": [req(), "server_async_wait", "fail", "check_wait_reply"],
    "server_coroutine_cancelled_then_send": ["server_async_wait", "server_async_cancel", req(), "post",
                                             "try_wait", "try_wait"],
    "server_coroutine_and_areq": ["server_async_wait", ("areq", 0), "reply"],
    "wait_reply_timed_out_then_reply": [req(), ("wait_reply_zero", 0), "try_wait", "reply"],
    "wait_reply_min_deadline_then_reply": [req(), ("wait_reply_zero", 128), "try_wait", "reply"],
    "wait_reply_short_deadline_then_reply": [req(), ("wait_reply_zero", 64), "try_wait", "reply"],
    "server_short_deadline_empty_then_message": [("server_wait_zero", 64), req(), ("server_wait_zero", 64),
                                                 "reply", ("drop_client", 0), ("server_wait_zero", 64),
                                                 "check_wait_reply"],
    "wait_reply_timed_wait_after_reply": [req(), "try_wait", "reply", ("wait_reply_zero", 0)],
    "server_zero_wait_empty_then_message": ["server_wait_zero", req(), "server_wait_zero", "reply",
                                            "check_wait_reply", ("drop_client", 0), "server_wait_zero"],
    "context_moved_onto_occupied_slot": [req(0, 0), req(0, 1), "try_wait", ("try_wait", 1),
                                         ("move_ctx", 0 | (1 << 3)), ("reply", 1), "check_wait_reply",
                                         ("check_wait_reply", 1)],
    "wait_reply_slot_reused_abandons_old": [req(0, 0), req(0, 0), "try_wait", "try_wait", "reply",
                                            ("reply", 0), "check_wait_reply"],
    "client_self_copy_and_move": [("clone_client", sd(0, 0)), ("move_client", sd(0, 3)), req(3, 0),
                                  ("clone_client", sd(3, 1)), ("move_client", sd(1, 3)), "try_wait",
                                  "reply", "check_wait_reply"],
    "request_move_throws_nothing_sent": [("arm_throw", 0), req(), "try_wait", req(0, 1), "try_wait",
                                         "reply", ("check_wait_reply", 1)],
    "post_move_throws_nothing_sent": [("arm_throw", 0), "post", "try_wait", "post", "try_wait"],
    "receive_move_throws_no_reply": [req(), ("arm_throw", 0), "try_wait", "check_wait_reply",
                                     "post", ("arm_throw", 1), "try_wait"],
    "reply_move_throws_context_stays": [req(), "try_wait", ("arm_throw", 0), "reply", ("arm_throw", 1),
                                        "reply", "reply", "check_wait_reply"],
    "collect_move_throws_outcome_lost": [req(), "try_wait", "reply", ("arm_throw", 0), "check_wait_reply"],
    "deferred_await_reply_then_run": [req(), ("await_wait_reply", DEFERRED), "try_wait", "reply",
                                      "run_scheduled"],
    "deferred_await_cancelled_while_queued": [req(), ("await_wait_reply", DEFERRED), "try_wait", "reply",
                                              ("cancel_await", 0), "run_scheduled"],
    "deferred_areq_server_dropped_then_run": [("areq", DEFERRED), ("areq", DEFERRED | 4), "drop_server",
                                              "run_scheduled"],
    "deferred_server_coroutine_woken_then_run": [("server_async_wait", 1), "post", req(), "run_scheduled",
                                                 ("server_async_wait", 1), "run_scheduled", "reply",
                                                 "check_wait_reply"],
    "deferred_server_coroutine_cancelled_while_queued": [("server_async_wait", 1), req(),
                                                         "server_async_cancel", "run_scheduled", "try_wait",
                                                         "reply", "check_wait_reply"],
    "deferred_server_coroutine_clients_gone": [("server_async_wait", 1), ("drop_client", 0), "run_scheduled"],
    "remake_channel_spin_zero": [req(), ("make_channel", 3), req(), "try_wait", "reply", "check_wait_reply"],
    "plain_reply_fail_drop": [req(0, 0), req(0, 1), req(0, 2), "try_wait", ("try_wait", 1),
                              ("try_wait", 2), "reply", fail(1, 9), ("drop_ctx", 2),
                              "check_wait_reply", ("check_wait_reply", 1), ("check_wait_reply", 2)],
    "plain_server_dropped_with_queue": [req(0, 0), req(0, 1), ("areq", 0), "drop_server",
                                        "check_wait_reply", ("check_wait_reply", 1)],
    "plain_server_wait_until_min": [("server_wait_zero", 128), req(), ("server_wait_zero", 128), "reply",
                                    "check_wait_reply"],
    "plain_clients_disappeared": [req(), ("drop_client", 0), "try_wait", "try_wait", "drop_ctx",
                                  "check_wait_reply"],
}
PLAIN_SEEDS = {name for name in OPS_SEEDS if name.startswith("plain_")}

# --- cell_fuzzer ---------------------------------------------------------------------------
CELL_OPS = ["acquire", "register", "publish_value", "publish_app_error", "publish_error", "abandon",
            "is_ready", "wait_ready", "consume", "probe_abandoned", "withdraw", "arm_throw"]
COP = {name: i for i, name in enumerate(CELL_OPS)}


def cell(option, *steps):
    """option: the harness's first byte (spin budget); steps: (name, slot, extra) or names."""
    out = bytearray([option])
    for s in steps:
        if isinstance(s, str):
            s = (s, 0, 0)
        name, slot, extra = (s + (0,))[:3]
        out += bytes([COP[name], (slot & 7) | ((extra & 31) << 3)])
    return bytes(out)


def deadline(kind):
    """wait_ready's deadline: 0 none, 1 time_point::min(), 2 an hour ago, 3 now, 4 in 1 us."""
    return kind


CELL_SEEDS = {
    "publish_then_consume": cell(0, "acquire", "publish_value", "is_ready", "consume"),
    "async_waiter_woken_by_publish": cell(0, "acquire", "register", "is_ready", "publish_value",
                                          "is_ready", "consume"),
    "register_after_ready_refused": cell(0, "acquire", "publish_value", "register", "consume"),
    "abandon_then_publish_origin_gone": cell(0, "acquire", "abandon", "probe_abandoned", "publish_value"),
    "abandon_after_publish_requester_recycles": cell(0, "acquire", "publish_value", "abandon", "acquire"),
    "withdraw_before_publish_no_wake": cell(0, "acquire", "register", "withdraw", "probe_abandoned",
                                            "publish_value"),
    "withdraw_after_publish_refused": cell(0, "acquire", "register", "publish_value", "withdraw", "consume"),
    "abandon_while_waiting_async_no_wake": cell(0, "acquire", "register", "abandon", "publish_value"),
    "wait_ready_min_deadline": cell(0, "acquire", ("wait_ready", 0, deadline(1)), "publish_value"),
    "wait_ready_min_deadline_spinning": cell(2, "acquire", ("wait_ready", 0, deadline(1)), "publish_value"),
    "wait_ready_past_deadline": cell(1, "acquire", ("wait_ready", 0, deadline(2)), "probe_abandoned",
                                     "publish_error"),
    "wait_ready_now": cell(0, "acquire", ("wait_ready", 0, deadline(3)), "publish_app_error"),
    "wait_ready_short_deadline": cell(2, "acquire", ("wait_ready", 0, deadline(4)), "publish_value"),
    "wait_ready_after_publish": cell(1, "acquire", "publish_value", ("wait_ready", 0, deadline(0)), "consume"),
    "wait_ready_after_publish_spin_zero": cell(0, "acquire", "publish_app_error",
                                               ("wait_ready", 0, deadline(3)), "consume"),
    "publish_errors": cell(0, "acquire", ("acquire", 1), ("publish_error", 0, 1), ("publish_error", 1),
                           "consume", ("consume", 1)),
    "publish_move_throws_then_retry": cell(0, "acquire", "register", ("arm_throw", 0, 0), "publish_value",
                                           "is_ready", "publish_value", "consume"),
    "consume_move_throws_node_recycled": cell(0, "acquire", "publish_value", ("arm_throw", 0, 0), "consume",
                                              "acquire"),
    "pool_lifo_reuse": cell(0, "acquire", ("acquire", 1), ("acquire", 2), ("publish_value", 1), ("consume", 1),
                            ("abandon", 2), ("publish_value", 2), ("acquire", 3), ("acquire", 4), "abandon",
                            "publish_value", ("acquire", 5)),
    "many_cells_mixed": cell(1, *[("acquire", k) for k in range(8)],
                             *[("register", k) for k in range(0, 8, 2)],
                             *[("abandon", k) for k in range(0, 8, 3)],
                             *[("publish_value", k) for k in range(8)],
                             *[("consume", k) for k in range(8)]),
}


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name.replace("_", "-")), "wb") as f:
        f.write(data)


def main():
    for target in ("ops_fuzzer", "cell_fuzzer"):
        d = os.path.join(HERE, "corpus", target)
        if os.path.isdir(d):
            for f in os.listdir(d):
                if f.startswith("seed-"):
                    os.remove(os.path.join(d, f))
    for name, steps in OPS_SEEDS.items():
        write("ops_fuzzer", name, ops(*steps, ch=PLAIN if name in PLAIN_SEEDS else NG))
    for name, data in CELL_SEEDS.items():
        write("cell_fuzzer", name, data)
    print(f"wrote {len(OPS_SEEDS)} ops_fuzzer and {len(CELL_SEEDS)} cell_fuzzer seeds", file=sys.stderr)


if __name__ == "__main__":
    main()
