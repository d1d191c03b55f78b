"""Payloads for the hostile-input tests of hotspan-agent: pprof profiles
built by hand (protobuf wire format, field numbers of pprof's
profile.proto) with a chosen stack depth, sample value and labels."""
import time

from agent_client import _ld, _varint, _vi


def pprof_stack(depth, value=1000000, span_id=0, endpoint=None,
                type_name="cpu", now=None):
    """One sample whose stack is depth frames deep, leaf first: functions
    f0 (the leaf) to f<depth-1> (the outermost caller), each its own
    location. value: the sample's <type>/nanoseconds value; span_id and
    endpoint: the "span id" and "trace endpoint" labels when given."""
    strings = ["", type_name, "nanoseconds", "deep.c", "span id",
               "trace endpoint", endpoint or ""]
    first = len(strings)
    msg = bytearray(_ld(1, _vi(1, 1) + _vi(2, 2)))  # sample_type
    for i in range(depth):
        strings.append("f%d" % i)
        fid = i + 1
        msg += _ld(5, _vi(1, fid) + _vi(2, first + i) + _vi(4, 3))
        msg += _ld(4, _vi(1, fid) + _ld(4, _vi(1, fid) + _vi(2, i + 1)))
    ids = b"".join(_varint(i + 1) for i in range(depth))
    sample = _ld(1, ids) + _ld(2, _varint(value))
    if span_id:
        sample += _ld(3, _vi(1, 4) + _vi(3, span_id))
    if endpoint:
        sample += _ld(3, _vi(1, 5) + _vi(2, 6))
    msg += _ld(2, sample)
    for s in strings:
        msg += _ld(6, s.encode())
    msg += _vi(9, now or time.time_ns()) + _vi(10, 10 ** 9)
    return bytes(msg)


def flame_depth(node):
    """(depth, names from the root's first child down) of the flame
    graph's first path, without recursion."""
    names = []
    while node.get("children"):
        node = node["children"][0]
        names.append(node["name"])
    return len(names), names
