"""Stand-in for modules/call_queue.py: the generation lock (Forge's FIFOLock; not re-entrant)."""

import threading

queue_lock = threading.Lock()
