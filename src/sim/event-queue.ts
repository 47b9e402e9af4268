/**
 * The simulator's agenda: callbacks ordered by simulated time, ties broken by insertion order
 * so that a run is a pure function of its seed.
 */
interface ScheduledEvent {
  readonly time: number;
  readonly seq: number;
  readonly run: () => void;
}

export class EventQueue {
  #heap: ScheduledEvent[] = [];
  #seq = 0;
  now = 0;

  get size(): number {
    return this.#heap.length;
  }

  at(time: number, run: () => void): void {
    const event = { time: Math.max(time, this.now), seq: this.#seq++, run };
    const heap = this.#heap;
    heap.push(event);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(event, heap[parent] as ScheduledEvent)) break;
      heap[i] = heap[parent] as ScheduledEvent;
      i = parent;
    }
    heap[i] = event;
  }

  after(delay: number, run: () => void): void {
    this.at(this.now + delay, run);
  }

  /** Runs the next event; returns false when none is due at or before `until`. */
  runNext(until: number): boolean {
    const heap = this.#heap;
    const first = heap[0];
    if (first === undefined || first.time > until) return false;
    const last = heap.pop() as ScheduledEvent;
    if (heap.length > 0) {
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        if (left >= heap.length) break;
        const right = left + 1;
        const child =
          right < heap.length && before(heap[right] as ScheduledEvent, heap[left] as ScheduledEvent)
            ? right
            : left;
        if (!before(heap[child] as ScheduledEvent, last)) break;
        heap[i] = heap[child] as ScheduledEvent;
        i = child;
      }
      heap[i] = last;
    }
    this.now = first.time;
    first.run();
    return true;
  }
}

function before(a: ScheduledEvent, b: ScheduledEvent): boolean {
  return a.time < b.time || (a.time === b.time && a.seq < b.seq);
}
