"""The instant loop's kernel, compiled (numba): a call routed in advance, moment by moment, in arrays.

``run_moments`` does at each moment what ``engine.instant_loop`` describes: the flows due end and leave
their links, flows in flight arrive, transfers whose start delay is over enter and their flows join
their links, what that releases in the DAG follows at the same moment, and then the flows reachable
from the links that changed are re-rated once, max-min (``engine.maxmin``'s progressive filling,
round by round, with its float operations in its order). The order in which one moment's work is
done changes no number, so it is taken from a stack.

Its state: flows on links as doubly linked lists of nodes (a node per link of an active flow, its
records reused once the flow has left), completions in one heap (an entry is live while its flow is
on its links with that end time), the moments ahead at which flows arrive or transfers enter in
another. Numbers are int64 picoseconds and float64 bits and bits per second throughout.

numba compiles it once per machine on first use (some seconds) and keeps it in its cache
(``fabricsim.compiler``).
"""

from __future__ import annotations

import numpy as np
from fabricsim.compiler import compiled

NEVER = np.iinfo(np.int64).max
PS_PER_S_FLOAT = 1e12  # units.PS_PER_S, exactly, as the float the flow network's arithmetic turns it into
ENTER, SENT, ARRIVED = 0, 1, 2  # a moment's work items: a transfer enters; a flow sent its last bit; arrived
ARRIVAL, ENTRY = 0, 1  # what waits in the heap of moments ahead


@compiled
def _resized(values: np.ndarray, size: int) -> np.ndarray:
    """``values`` in an array of ``size``, the new places -1."""
    bigger = np.full(size, -1, dtype=values.dtype)
    bigger[:len(values)] = values
    return bigger


@compiled
def _grown(values: np.ndarray) -> np.ndarray:
    return _resized(values, 2 * len(values) + 16)


@compiled
def _pushed(stack: np.ndarray, size: int, value: int):
    """``value`` on top of the stack of ``size`` entries; returns the stack (grown if full) and its size."""
    if size == len(stack):
        stack = _grown(stack)
    stack[size] = value
    return stack, size + 1


@compiled
def _heap_push(keys: np.ndarray, values: np.ndarray, size: int, key: int, value: int):
    """Push (key, value) on the heap of ``size`` entries; returns the arrays (grown if full)."""
    if size == len(keys):
        keys, values = _grown(keys), _grown(values)
    at = size
    while at > 0:
        parent = (at - 1) // 2
        if keys[parent] < key or (keys[parent] == key and values[parent] <= value):
            break
        keys[at], values[at] = keys[parent], values[parent]
        at = parent
    keys[at], values[at] = key, value
    return keys, values


@compiled
def _heap_pop(keys: np.ndarray, values: np.ndarray, size: int) -> None:
    """Drop the top of the heap of ``size`` entries (the caller read it and counts one less)."""
    size -= 1
    key, value = keys[size], values[size]
    at = 0
    while True:
        child = 2 * at + 1
        if child >= size:
            break
        if child + 1 < size and (keys[child + 1] < keys[child]
                                 or (keys[child + 1] == keys[child] and values[child + 1] < values[child])):
            child += 1
        if key < keys[child] or (key == keys[child] and value <= values[child]):
            break
        keys[at], values[at] = keys[child], values[child]
        at = child
    keys[at], values[at] = key, value


@compiled
def _filed(ahead_keys, ahead_values, ahead, work, n_work, now, wait_ps, item, later, at_once):
    """``item`` (a flow or a transfer) on this moment's work stack as ``at_once`` when it waits nothing,
    else in the heap of moments ahead, ``wait_ps`` from now, as ``later``; returns both, grown if full."""
    if wait_ps:
        ahead_keys, ahead_values = _heap_push(ahead_keys, ahead_values, ahead, now + wait_ps, item * 2 + later)
        return ahead_keys, ahead_values, ahead + 1, work, n_work
    work, n_work = _pushed(work, n_work, item * 3 + at_once)
    return ahead_keys, ahead_values, ahead, work, n_work


@compiled
def _max_min_rates(reached, n_reached, fixed, route_links, flow_route, pad, count, capacity_bps, link_seen, generation,
                   left_bps, unfixed, share_bps, given, shared_links):
    """The max-min rate of each of the ``n_reached`` flows of ``reached`` (every flow on their links):
    a flow alone on its links gets its least capacity; the others are filled progressively, as
    ``engine.maxmin`` fills them. Per link scratch: capacity left, flows not fixed, share, flows fixed
    this round; links of shared flows are stamped ``-generation`` in ``link_seen``. Returns the rates
    and the scratch arrays that grew."""
    width = route_links.shape[1]
    if len(fixed) < n_reached:
        fixed = np.zeros(2 * n_reached, dtype=np.bool_)
    new_bps = np.empty(n_reached)
    n_shared, n_links = 0, 0
    for k in range(n_reached):
        flow = reached[k]
        least_bps, alone = np.inf, True
        for slot in range(width):
            link = route_links[flow_route[flow], slot]
            if link == pad:
                break
            if count[link] != 1:
                alone = False
            if capacity_bps[link] < least_bps:
                least_bps = capacity_bps[link]
        new_bps[k] = least_bps
        if alone:
            fixed[k] = True
            continue
        fixed[k] = False
        n_shared += 1
        for slot in range(width):
            link = route_links[flow_route[flow], slot]
            if link == pad:
                break
            if link_seen[link] != -generation:
                link_seen[link] = -generation
                left_bps[link], unfixed[link], given[link] = capacity_bps[link], 0, 0
                shared_links, n_links = _pushed(shared_links, n_links, link)
            unfixed[link] += 1
    while n_shared:  # a round of progressive filling: every link at the least share is fixed at once
        level_bps = np.inf
        for j in range(n_links):
            link = shared_links[j]
            share_bps[link] = left_bps[link] / unfixed[link] if unfixed[link] > 0 else np.inf
            if share_bps[link] < level_bps:
                level_bps = share_bps[link]
        for k in range(n_reached):
            if fixed[k]:
                continue
            flow = reached[k]
            at_level = False
            for slot in range(width):
                link = route_links[flow_route[flow], slot]
                if link == pad:
                    break
                if share_bps[link] == level_bps:
                    at_level = True
                    break
            if not at_level:
                continue
            fixed[k] = True
            n_shared -= 1
            new_bps[k] = max(level_bps, 0.0)
            for slot in range(width):
                link = route_links[flow_route[flow], slot]
                if link == pad:
                    break
                given[link] += 1
        for j in range(n_links):
            link = shared_links[j]
            left_bps[link] -= level_bps * given[link]
            unfixed[link] -= given[link]
            given[link] = 0
    return new_bps, fixed, shared_links


@compiled
def run_moments(start_ps, delay_ps, roots, waiting, sent_children_starts, sent_children,
                delivered_children_starts, delivered_children, unsent, undelivered_flows, released_at,
                released_by_delivery, released_by, delivered_at, flow_starts, flow_route, flow_tid, nbits,
                wait_ps, route_links, capacity_bps, carried_bits, busy_ps, peak_flows):
    """Run the call from ``start_ps`` until every transfer is delivered.

    DAG (per transfer, updated in place as ``DagProgress`` keeps them): start delays, roots, the count of
    dependencies not yet done, children released by sending and by delivery (flat, with starts), flows
    not yet sent and not delivered, the release (time, by delivery, by whom) and delivery times.
    Flows (per flow, transfer by transfer): first flow of each transfer, route, transfer, bits, wait
    from the last bit to the delivery; routes as rows of links padded with the link index ``pad``
    (``len(capacity_bps) - 1``, of infinite capacity). Per link: bits carried, busy time and peak
    flows of this call, added to in place. Returns the time of the last moment and the latest
    delivery (time, then the highest transfer id).
    """
    pad = len(capacity_bps) - 1
    width = route_links.shape[1]
    flows = len(flow_tid)
    undelivered = len(delay_ps)
    latest_ps, latest_tid = -1, -1
    # per flow
    remaining_bits = nbits.copy()
    rate_bps = np.zeros(flows)
    updated_ps = np.zeros(flows, dtype=np.int64)
    end_ps = np.full(flows, NEVER, dtype=np.int64)
    record_of = np.full(flows, -1, dtype=np.int64)  # its record of nodes while on its links
    flow_seen = np.zeros(flows, dtype=np.int64)  # the last re-rating that reached it
    # per link
    count = np.zeros(pad + 1, dtype=np.int64)
    busy_since_ps = np.zeros(pad + 1, dtype=np.int64)
    head = np.full(pad + 1, -1, dtype=np.int64)  # first node of its flows
    link_seen = np.zeros(pad + 1, dtype=np.int64)  # the last re-rating (or note of marks) that reached it
    left_bps = np.zeros(pad + 1)  # max-min: capacity not yet given
    unfixed = np.zeros(pad + 1, dtype=np.int64)  # max-min: flows not yet fixed
    share_bps = np.zeros(pad + 1)
    given = np.zeros(pad + 1, dtype=np.int64)
    # records of nodes: record r holds nodes r * width + slot; free records on a stack
    record_flow = np.zeros(64, dtype=np.int64)
    next_node = np.full(64 * width, -1, dtype=np.int64)
    previous_node = np.full(64 * width, -1, dtype=np.int64)
    free_records = np.arange(63, -1, -1).astype(np.int64)
    free_count = 64
    # heaps: completions (end, flow); moments ahead (time, flow or transfer * 2 + what)
    end_keys, end_flows, ends = np.zeros(64, dtype=np.int64), np.zeros(64, dtype=np.int64), 0
    ahead_keys, ahead_values, ahead = np.zeros(64, dtype=np.int64), np.zeros(64, dtype=np.int64), 0
    # scratch: a moment's work stack, its marked links, a re-rating's flows and links
    work = np.zeros(64, dtype=np.int64)
    marked = np.zeros(64, dtype=np.int64)
    reached = np.zeros(64, dtype=np.int64)
    todo = np.zeros(64, dtype=np.int64)
    shared_links = np.zeros(64, dtype=np.int64)
    fixed = np.zeros(64, dtype=np.bool_)
    generation = 0

    for tid in roots:
        ahead_keys, ahead_values = _heap_push(ahead_keys, ahead_values, ahead, start_ps + delay_ps[tid],
                                              tid * 2 + ENTRY)
        ahead += 1
    now = start_ps
    while undelivered:
        while ends and not (record_of[end_flows[0]] >= 0 and end_ps[end_flows[0]] == end_keys[0]):
            _heap_pop(end_keys, end_flows, ends)  # an entry a re-rating replaced, or of a flow gone
            ends -= 1
        next_end_ps = end_keys[0] if ends else NEVER
        now = min(next_end_ps, ahead_keys[0] if ahead else NEVER)
        if now == NEVER:
            raise RuntimeError("the call's transfers wait on each other: some are never ready")
        n_work, n_marked = 0, 0
        while ends and end_keys[0] == now:  # the flows due end: their last bit leaves
            flow = end_flows[0]
            _heap_pop(end_keys, end_flows, ends)
            ends -= 1
            if record_of[flow] < 0 or end_ps[flow] != now:
                continue
            record = record_of[flow]
            for slot in range(width):
                link = route_links[flow_route[flow], slot]
                if link == pad:
                    break
                node = record * width + slot
                if previous_node[node] >= 0:
                    next_node[previous_node[node]] = next_node[node]
                else:
                    head[link] = next_node[node]
                if next_node[node] >= 0:
                    previous_node[next_node[node]] = previous_node[node]
                count[link] -= 1
                carried_bits[link] += nbits[flow]
                if count[link]:
                    marked, n_marked = _pushed(marked, n_marked, link)
                else:
                    busy_ps[link] += now - busy_since_ps[link]
            record_of[flow] = -1
            end_ps[flow] = NEVER
            remaining_bits[flow] = 0.0
            updated_ps[flow] = now
            free_records, free_count = _pushed(free_records, free_count, record)
            work, n_work = _pushed(work, n_work, flow * 3 + SENT)
        while ahead and ahead_keys[0] == now:  # flows in flight arrive; transfers enter
            value = ahead_values[0]
            _heap_pop(ahead_keys, ahead_values, ahead)
            ahead -= 1
            work, n_work = _pushed(work, n_work, (value // 2) * 3 + (ARRIVED if value % 2 == ARRIVAL else ENTER))
        while n_work:
            n_work -= 1
            item = work[n_work]
            what, item = item % 3, item // 3
            if what == ENTER:
                for flow in range(flow_starts[item], flow_starts[item + 1]):
                    if not nbits[flow] > 0 or route_links[flow_route[flow], 0] == pad:  # sent as it starts
                        work, n_work = _pushed(work, n_work, flow * 3 + SENT)
                        continue
                    if not free_count:
                        records = len(record_flow)
                        record_flow = _grown(record_flow)
                        next_node = _resized(next_node, len(record_flow) * width)
                        previous_node = _resized(previous_node, len(record_flow) * width)
                        free_records = np.arange(len(record_flow) - 1, records - 1, -1).astype(np.int64)
                        free_count = len(free_records)
                    free_count -= 1
                    record = free_records[free_count]
                    record_of[flow], record_flow[record] = record, flow
                    updated_ps[flow] = now
                    for slot in range(width):
                        link = route_links[flow_route[flow], slot]
                        if link == pad:
                            break
                        node = record * width + slot
                        previous_node[node], next_node[node] = -1, head[link]
                        if head[link] >= 0:
                            previous_node[head[link]] = node
                        head[link] = node
                        if not count[link]:
                            busy_since_ps[link] = now
                        count[link] += 1
                        marked, n_marked = _pushed(marked, n_marked, link)
                continue
            if what == SENT:
                flow, tid = item, flow_tid[item]
                ahead_keys, ahead_values, ahead, work, n_work = _filed(
                    ahead_keys, ahead_values, ahead, work, n_work, now, wait_ps[flow], flow, ARRIVAL, ARRIVED)
                unsent[tid] -= 1
                if unsent[tid]:
                    continue
                children, children_starts, delivered = sent_children, sent_children_starts, 0
            else:
                tid = flow_tid[item]
                undelivered_flows[tid] -= 1
                if undelivered_flows[tid]:
                    continue
                undelivered -= 1
                delivered_at[tid] = now
                if now > latest_ps or (now == latest_ps and tid > latest_tid):
                    latest_ps, latest_tid = now, tid
                children, children_starts, delivered = delivered_children, delivered_children_starts, 1
            for place in range(children_starts[tid], children_starts[tid + 1]):
                child = children[place]
                # of dependencies done at one moment, the last to release is a delivery, then the highest id
                if now > released_at[child] or delivered > released_by_delivery[child] or (
                        delivered == released_by_delivery[child] and tid > released_by[child]):
                    released_at[child], released_by_delivery[child], released_by[child] = now, delivered, tid
                waiting[child] -= 1
                if waiting[child]:
                    continue
                ahead_keys, ahead_values, ahead, work, n_work = _filed(
                    ahead_keys, ahead_values, ahead, work, n_work, now, delay_ps[child], child, ENTRY, ENTER)
        if not n_marked or not undelivered:
            continue
        # the end of the moment: note peaks; find the flows reachable from the marked links
        generation += 1
        n_todo = 0
        for k in range(n_marked):
            link = marked[k]
            if link_seen[link] != generation:
                link_seen[link] = generation
                if count[link] > peak_flows[link]:
                    peak_flows[link] = count[link]
                todo, n_todo = _pushed(todo, n_todo, link)
        n_reached = 0
        while n_todo:
            n_todo -= 1
            node = head[todo[n_todo]]
            while node >= 0:
                flow = record_flow[node // width]
                node = next_node[node]
                if flow_seen[flow] == generation:
                    continue
                flow_seen[flow] = generation
                reached, n_reached = _pushed(reached, n_reached, flow)
                for slot in range(width):
                    link = route_links[flow_route[flow], slot]
                    if link == pad:
                        break
                    if link_seen[link] != generation:
                        link_seen[link] = generation
                        todo, n_todo = _pushed(todo, n_todo, link)
        new_bps, fixed, shared_links = _max_min_rates(reached, n_reached, fixed, route_links, flow_route, pad, count,
                                                      capacity_bps, link_seen, generation, left_bps, unfixed,
                                                      share_bps, given, shared_links)
        # settle each flow whose rate changed at its old rate, and file its new end
        for k in range(n_reached):
            flow = reached[k]
            if new_bps[k] == rate_bps[flow]:
                continue
            if rate_bps[flow] != 0:
                remaining_bits[flow] = max(0.0, remaining_bits[flow]
                                           - rate_bps[flow] * (now - updated_ps[flow]) / PS_PER_S_FLOAT)
            rate_bps[flow], updated_ps[flow] = new_bps[k], now
            if new_bps[k] <= 0:  # stalled (calls with a link down run on the event loop: never so far)
                end_ps[flow] = NEVER
                continue
            end_ps[flow] = now + np.int64(np.rint(remaining_bits[flow] * PS_PER_S_FLOAT / new_bps[k]))
            end_keys, end_flows = _heap_push(end_keys, end_flows, ends, end_ps[flow], flow)
            ends += 1
        if ends > 4 * (len(record_flow) - free_count) + 1024:  # replaced entries outnumber the live ones
            live = 0
            for k in range(ends):
                if record_of[end_flows[k]] >= 0 and end_ps[end_flows[k]] == end_keys[k]:
                    end_keys[live], end_flows[live] = end_keys[k], end_flows[k]
                    live += 1
            ends = 0
            for k in range(live):
                end_keys, end_flows = _heap_push(end_keys, end_flows, ends, end_keys[k], end_flows[k])
                ends += 1
    return now, latest_ps, latest_tid
