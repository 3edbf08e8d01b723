"""Ids are time-ordered, unique, and keep their format: `<prefix>_` + 26 Crockford base32 characters."""

from __future__ import annotations

import os
import re
import threading
import time

from seamflow import ids

FORMAT = re.compile(r"run_[0-7][0-9abcdefghjkmnpqrstvwxyz]{25}")
ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def decode(identifier: str) -> int:
    value = 0
    for char in identifier.split("_", 1)[1]:
        value = value * 32 + ALPHABET.index(char)
    return value


def test_an_id_is_the_prefix_and_26_base32_characters() -> None:
    for _ in range(1000):
        assert FORMAT.fullmatch(ids.new_id("run"))


def test_an_id_starts_with_its_creation_time_in_milliseconds() -> None:
    before = int(time.time() * 1000)
    identifier = ids.new_id("run")
    after = int(time.time() * 1000)
    assert before <= decode(identifier) >> 80 <= after


def test_ids_made_later_sort_later() -> None:
    first = ids.new_id("evt")
    time.sleep(0.002)
    assert ids.new_id("evt") > first


def test_ids_are_unique_across_threads() -> None:
    made: list[list[str]] = [[] for _ in range(4)]

    def make(into: list[str]) -> None:
        into.extend(ids.new_id("run") for _ in range(5000))

    threads = [threading.Thread(target=make, args=(into,)) for into in made]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [identifier for batch in made for identifier in batch]
    assert len(set(everything)) == len(everything)


def test_a_forked_child_does_not_repeat_its_parents_random_bits() -> None:
    ids.new_id("run")  # the parent now holds a block of random bytes
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next ids and leave at once
        os.close(read_end)
        os.write(write_end, " ".join(ids.new_id("run") for _ in range(10)).encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        child = pipe.read().split()
    os.waitpid(pid, 0)
    parent = [ids.new_id("run") for _ in range(10)]
    assert {decode(i) & ((1 << 80) - 1) for i in child}.isdisjoint({decode(i) & ((1 << 80) - 1) for i in parent})
