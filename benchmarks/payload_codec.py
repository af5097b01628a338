"""What encrypting payloads at rest costs: microseconds per payload, encrypt and decrypt.

For payloads of 256 B, 1 KiB (a pairing request), 16 KiB and 64 KiB, it times with ``timeit``
the codec's ``encrypt`` (protobuf serialisation, a fresh nonce, AES-256-GCM) and ``decrypt``
(authentication, decryption, protobuf parsing), best of five repeats, on one thread.

Run: ``python -m benchmarks.payload_codec [--number 2000]``.
"""

from __future__ import annotations

import argparse
import os
import timeit

from temporalio.api.common.v1 import Payload

from payload_codec import EncryptionCodec, PayloadKey, PayloadKeyring

SIZES = (256, 1024, 16 * 1024, 64 * 1024)
REPEATS = 5


def microseconds_per_call(call: object, number: int) -> float:
    timer = timeit.Timer("call()", globals={"call": call})
    return min(timer.repeat(REPEATS, number)) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=2000, help="calls per repeat")
    args = parser.parse_args()
    codec = EncryptionCodec(PayloadKeyring((PayloadKey("k", os.urandom(32)),), "k"))
    print(f"{'payload':>10} {'encrypt µs':>11} {'decrypt µs':>11} {'MB/s (enc)':>11}")
    for size in SIZES:
        payload = Payload(metadata={"encoding": b"json/plain"}, data=os.urandom(size))
        encrypted = codec.encrypt(payload)
        if codec.decrypt(encrypted) != payload:
            raise SystemExit("The codec does not give back what it encrypted")
        encrypt = microseconds_per_call(lambda p=payload: codec.encrypt(p), args.number)
        decrypt = microseconds_per_call(lambda e=encrypted: codec.decrypt(e), args.number)
        print(f"{size:>10} {encrypt:>11.1f} {decrypt:>11.1f} {size / encrypt:>11.0f}")


if __name__ == "__main__":
    main()
