#!/usr/bin/env python3
"""Regenerates crates/axum-watch/src/docs/*.md (the docs.rs crate page and guide)
from the README, which stays the one source: run it after editing the README.
tests/docs.rs checks that the pages are up to date."""
import re, pathlib
root = pathlib.Path(__file__).resolve().parents[2]
readme = (root/'README.md').read_text()
lines = readme.split('\n')
# split into top-level sections outside code fences
sections = {}; order = []; cur = None; fence = False; pre = []
for l in lines:
    if l.startswith('```'): fence = not fence
    if not fence and l.startswith('## '):
        cur = l[3:].strip(); order.append(cur); sections[cur] = [l]; continue
    (sections[cur] if cur else pre).append(l)

def shift(body):
    out = []; fence = False
    for l in body:
        if l.startswith('```'): fence = not fence
        if not fence and re.match(r'#{2,6} ', l): l = l[1:]
        out.append(l)
    return out

def fix_links(t):
    t = t.replace('](#writing-a-probe)', '](crate::guide::probes)')
    t = t.replace('](#production-lifecycle)', '](crate::guide::resilience)')
    t = t.replace('[`MemoryStorage`]', '[`MemoryStorage`](crate::storage::MemoryStorage)')
    # Images live in the repository, not in the published crate: docs.rs gets them from GitHub.
    t = re.sub(r'(!\[[^\]]*\])\(docs/', r'\1(https://raw.githubusercontent.com/axum-watch/axum-watch/main/docs/', t)
    return t

pages = {
 'endpoints': ['Endpoints', 'Response format'],
 'probes': ['Writing a probe', 'Registering probes', 'Caching and single flight'],
 'streams': ['Live streams and polling', 'Dashboard'],
 'resilience': ['Circuit breaker', 'Startup and grace period', 'Production lifecycle'],
 'grpc': ['gRPC health checking', 'Command-line tool'],
 'storage': ['History, alerts and storage'],
 'metrics': ['Prometheus metrics', 'OpenTelemetry and the metrics crate'],
 'maintenance': ['Maintenance mode'],
 'auth': ['Authentication'],
 'alerting': ['Alerting', 'State-change callbacks'],
 'passive': ['Passive probes'],
 'builtin_probes': ['Built-in probes', 'Managed services'],
 'configuration': ['Configuration reference', 'Logging', 'Redaction'],
}
used = set(x for v in pages.values() for x in v) | {'Quick start', 'Cargo features', 'Development'}
assert set(order) == used, set(order) ^ used
head = '<!-- Generated from README.md: edit the README, then regenerate (crates/axum-watch-tests/regenerate-docs.py). -->\n'
for name, secs in pages.items():
    body = []
    for s in secs:
        b = sections[s]
        while b and b[-1] == '': b = b[:-1]
        body += shift(b) + ['']
    (root/'crates/axum-watch/src/docs'/f'{name}.md').write_text(fix_links('\n'.join(body)) + '\n' + head)
# crate page: the intro, the quick start and the feature table
i = next(k for k, l in enumerate(pre) if l.startswith('Structured health'))
intro = pre[i:]
while intro and intro[-1] == '': intro = intro[:-1]
intro = '\n'.join(intro).replace(
 'The demo (`crates/axum-watch-examples/examples/quickstart.rs`) registers', 'The demo in the repository\n([`examples/quickstart.rs`](https://github.com/axum-watch/axum-watch/blob/main/crates/axum-watch-examples/examples/quickstart.rs),\n`cargo run --example quickstart`) registers')
qs = '\n'.join(shift(sections['Quick start'])).rstrip()
feat = '\n'.join(shift(sections['Cargo features'])).rstrip()
guide = '''# Guide

Each part of the library in depth, with examples:

- [Endpoints and the response format](crate::guide::endpoints)
- [Writing and registering probes; caching and single flight](crate::guide::probes)
- [Live streams, polling and the dashboard](crate::guide::streams)
- [Circuit breaker, startup probes, the grace period and the production lifecycle](crate::guide::resilience)
- [gRPC health checking and the command-line tool](crate::guide::grpc)
- [History, alerts and storage, shared across replicas](crate::guide::storage)
- [Prometheus metrics, OpenTelemetry and the `metrics` crate](crate::guide::metrics)
- [Maintenance mode](crate::guide::maintenance)
- [Authentication](crate::guide::auth)
- [Alerting and state-change callbacks](crate::guide::alerting)
- [Passive probes](crate::guide::passive)
- [Built-in probes](crate::guide::builtin_probes)
- [Configuration reference, logging and redaction](crate::guide::configuration)'''
(root/'crates/axum-watch/src/docs/crate.md').write_text('\n\n'.join([intro, qs, guide, feat]) + '\n\n' + head)
