"""The module benchmarks: requests that each bring replies, driven through the real stack.

``benchmarks.accounts``, ``benchmarks.connection_params`` and ``benchmarks.mixed`` are built
on this package. Each module of the server (``workload.Module``) makes its *exchanges*
before the stack starts: the messages one user posts (a pair posts two) and the replies the
stack owes them, known by recipient, content type and, where the benchmark can know them,
exact bytes. The run then starts the module's own servers (the development Authority, the
DNS and HTTPS servers), the stack configured for them (``benchmarks.stack``: Temporal dev
server, mongod, the worker(s), the ingress, the sink in this process) and:

1. a warm-up: ``--warmup`` exchanges of each module, checked but not measured;
2. the measured phase: a closed loop of ``--concurrency`` lanes, each posting an exchange's
   messages in turn and then waiting for all of its replies (at most ``--reply-timeout``)
   before taking the next, until every exchange was sent or ``--seconds`` passed.

Because every lane waits for its replies, no more than ``--concurrency`` exchanges are ever
outstanding, and the latencies (from the last message posted to the last reply at the sink)
are service time, not time queued behind a backlog. A module's rate counts its exchanges
that got every reply, over the phase's time from the first message posted to the last reply
received; under a mix all modules share that time. CPU is read from /proc for each
component (``benchmarks.cpu``): the stack's processes, the module's own (the Authority),
and ``benchmark``, this process, which holds the load generator, the sink and, for
connection parameters, the DNS and HTTPS servers.

The check (exit status 1 if it fails): every request answered 204, every reply received
exactly once (a second one with a new event id is a duplicate, the same event again a
redelivery), every reply awaited with unknown bytes right by the module's own check (an
account's bundle), and nothing else at the sink. Throughput and latency are reported, not
enforced.

The modules: ``workload`` (exchanges, modules, the mix), ``driver`` (the closed loop),
``figures``, ``run``, ``output`` (text ending with a one-line summary, or JSON) and
``command_line`` (the shared options).
"""
