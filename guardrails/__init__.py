"""Governance rules as code: PII masking, injection defence, output checks, tamper-evident audit (issue 3).

The answering pipeline already calls guards through ``assistant.guards`` (``InboundGuard``,
``OutboundGuard``, ``AuditSink``); this package will hold their governance implementations.
"""
