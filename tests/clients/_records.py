"""Shared helpers for the Python client scripts (not a client itself).

Records are generated deterministically from (seed, index), so a test can
produce the same data twice, and are reported as the JSON array
[partition, offset, key_hex|null, value_hex|null, [[header, value_hex|null], ...], timestamp|null]
(see tests/common/records.rs).
"""
import json
import random
import sys
import traceback

# A fixed CreateTime base (2023-11-14T22:13:20Z): timestamps must come back as sent.
TS_BASE = 1_700_000_000_000


def hexb(b):
    return None if b is None else bytes(b).hex()


def make_record(seed, i, null_headers=True, headers=True):
    """(key, value, headers, timestamp) for record number i.

    Covers: null keys, null values, empty values, binary values of varied
    length (partly compressible), no headers / several headers / a null
    header value, repeated keys (so keyed records share partitions).
    """
    r = random.Random(f"{seed}:{i}")
    key = None if i % 50 == 7 else f"key-{i % 97}".encode()
    if i % 211 == 5:
        value = None
    elif i % 101 == 3:
        value = b""
    else:
        text = (f"record {i} of seed {seed}; " * r.randint(0, 12)).encode()
        value = text + r.randbytes(r.randint(0, 96))
        if not value:
            value = b"x"
    hdrs = []
    if headers and i % 17 != 0:
        hdrs.append(("idx", str(i).encode()))
        hdrs.append(("bin", r.randbytes(r.randint(0, 12))))
        if null_headers and i % 13 == 0:
            hdrs.append(("nullh", None))
    return key, value, hdrs, TS_BASE + i


def rec(partition, offset, key, value, headers, ts):
    return [
        partition,
        offset,
        hexb(key),
        hexb(value),
        [[k if isinstance(k, str) else k.decode(), hexb(v)] for k, v in (headers or [])],
        ts,
    ]


def emit(obj):
    """Prints the script's single JSON result on stdout."""
    sys.stdout.write(json.dumps(obj, separators=(",", ":")))
    sys.stdout.write("\n")
    sys.stdout.flush()


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def run_main(main):
    """Runs main(); any exception: traceback on stderr, exit status 1."""
    try:
        main()
    except SystemExit:
        raise
    except BaseException:  # noqa: BLE001 - any client error fails the script
        traceback.print_exc()
        sys.exit(1)
