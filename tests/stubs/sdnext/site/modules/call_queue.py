"""Stand-in for SD.Next's modules/call_queue.py (a plain threading.Lock)."""

import threading

queue_lock = threading.Lock()
