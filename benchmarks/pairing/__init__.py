"""Contact pairing through the real stack: throughput, latency and the floor, either protocol.

    python -m benchmarks.pairing [--protocol legacy|veraid] [--pairs 2000] [--concurrency 64]
        [--max-outstanding N] [--simultaneous-pairs 200] [--rate R] [--json]

``python -m benchmarks.legacy_pairing`` and ``python -m benchmarks.veraid_pairing`` are the
same benchmark with the protocol chosen. ``--protocol`` picks what each pair sends
(``benchmarks.pairing_protocols``): legacy CSV requests, or real VeraId
``contact-pairing.request`` SignatureBundles (RSA-2048 keys, a mock DNSSEC chain the
stack is configured to trust). Every request of every phase is made first, before the
stack starts; the time that takes is printed. For VeraId, this process then measures how
fast it verifies those same bundles on one thread (per CPU second, with a warm
``VerificationCache`` and with none), to show what share of a core verification takes at
the rate the stack reaches.

By default the benchmark starts its own stack on 127.0.0.1 in a scratch folder (Temporal
dev server on SQLite, mongod, one worker and one ingress process, a recording sink in
this process) and stops it at the end, also on error or Ctrl-C. The phases, each bounded
by a pair count and by ``--phase-timeout``:

1. warm-up: a few pairs and floor workflows, checked but not reported;
2. floor: ``--pairs`` bare signal-with-starts pairs (two per pair) of an empty workflow
   (``benchmarks.floor``, run and polled as our pair workflows are) against the same Temporal
   server, ``--concurrency`` at a time;
3. floor with I/O: as many pairs of a workflow that also does the least I/O the design needs
   (``benchmarks.floor``: a MongoDB upsert for a request that waits alone; a deletion and
   two replies to the sink at the match; local activities), so our worker's CPU per pair
   is also shown against a worker that does that work and nothing else. It needs the
   stack's MongoDB, so a stack started elsewhere (``--ingress-url``) skips it;
4. closed loop: ``--pairs`` pairs over HTTP to the ingress, ``--concurrency`` at a time,
   each pair's first request and then, once it is accepted, its second;
5. simultaneous arrival: ``--simultaneous-pairs`` pairs, ``--concurrency`` at a time, both
   requests of a pair posted at the same instant on two connections, so they race each
   other through the ingress and the worker;
6. open loop: pairs arriving at ``--rate`` pairs/s (Poisson); by default half the floor's
   rate, ``--open-pairs`` pairs (2000 by default, so that the p99 rests on the slowest 20).

Matched pairs/s counts pairs whose two match messages both reached the sink, over the time
from the first request sent to the last match received. The floor's pairs/s likewise counts
*completed* floor workflows, over the time from the first signal-with-start to the moment
the floor worker finished the last one, so both include everything a pair makes Temporal
and the worker do, not only the acknowledgements; the target ratio (per protocol) compares
these two. The acceptance rates (requests answered 204, signal-with-starts accepted) are
printed as well, with their own ratio. Latency is from sending a pair's second request (in
the simultaneous phase, both) to both its match messages arriving at the sink. When the closed
loop's requests are accepted faster than its pairs are matched, its latency is mostly time
queued behind the backlog, and the report says so under its figures, comparing the two
rates; under the open loop's figures it likewise compares the offered rate with the closed
loop's matched rate, as an offered rate near it saturates the stack.
``--max-outstanding N`` bounds the pairs accepted but not yet matched
(``load_generator.bounded``): a lane takes a slot before a pair's first request, and the
slot is freed once both matches arrived, so the closed loop then measures service time.
Unbounded by default. The open loop's latency is the one to read as the service's latency
at a given load.

A match is recognised by its recipient endpoint id *and* its exact bytes: the legacy match
CSV, or for VeraId the contact's own bundle, with the protocol's content type. Exit status:
0 when every request was accepted, every side of every pair got exactly one such message
(so exactly two per pair), nothing else reached the sink, every floor signal-with-start
was accepted, and the floor with I/O sent exactly two replies per pair; 1 otherwise; 130
on Ctrl-C. Throughput and latency targets are reported, not enforced: they depend on the
machine.

The modules, in the order a run uses them:

* ``workload``: every request of the run, made first;
* ``match_recorder``: the sink's recorder, which knows each awaited match;
* ``load_generator``: the HTTP client of the ingress, closed and open loops;
* ``phases``: the floor and the pairing phases;
* ``figures``: what each phase measured, and the check of every match;
* ``run``: the stack, the phases in order, and the ``Report``;
* ``output``: the report as text or JSON;
* ``command_line``: the options and ``main``.
"""
