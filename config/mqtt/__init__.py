"""A lean MQTT 3.1.1 client shared by the meters and the bridge: ``packet`` builds and parses the packets and
``session`` keeps the session's rules (message ids, in flight, resend, keepalive; both pure: no sockets, no clock),
``connection`` drives them over one non-blocking socket, which ``link`` brings up (TCP, TLS) without blocking (I/O
shell).

It exists because paho spends most of a Python process's time per message on its own machinery (several ``recv`` per
packet, a wake-up socket, objects per PUBACK): the meters publish through it (``simulator.live.publisher``) and the
bridge subscribes through it (``bridge.ingest.subscriber``). Simulator and bridge never import each other; both
import this.
"""
