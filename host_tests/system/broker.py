"""A real MQTT broker for the uplink system tests: mosquitto (Debian 2.0.11, installed by
``make uplink-broker`` / tools/setup_uplink.py) on a free port of 127.0.0.1, anonymous,
no persistence, its own config in a temporary folder; plus a paho-mqtt 2.2 subscriber that
records what it receives."""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))

from setup_uplink import mosquitto_path  # noqa: E402

import ports  # noqa: E402


def free_port():
    return ports.free_port()  # disjoint between parallel pytest processes (tools/ptest.py)


class Mosquitto:
    """``with Mosquitto() as b:`` -> b.port; the broker is stopped on exit."""

    def __enter__(self):
        exe = mosquitto_path()
        assert exe, "mosquitto is not installed: run `make uplink-broker`"
        self.dir = tempfile.mkdtemp(prefix="mosq.")
        self.port = free_port()
        conf = os.path.join(self.dir, "mosquitto.conf")
        with open(conf, "w") as f:
            f.write("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n"
                    "max_queued_messages 100000\n" % self.port)
        self.log = open(os.path.join(self.dir, "log"), "w+")
        self.proc = subprocess.Popen([exe, "-c", conf], stdout=self.log, stderr=self.log)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 10:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return self
            except OSError:
                assert self.proc.poll() is None, self.text()
                time.sleep(0.05)
        raise AssertionError("mosquitto did not listen: " + self.text())

    def text(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-3000:]

    def __exit__(self, *exc):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Subscriber:
    """paho-mqtt client subscribed to ``topic``; ``messages`` = [(topic, payload bytes)]."""

    def __init__(self, port, topic, qos=1):
        import paho.mqtt.client as mqtt

        self.messages = []
        self.count = 0
        self._lock = threading.Lock()
        self._sub = threading.Event()
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="head-end",
                             protocol=mqtt.MQTTv311)
        self.c.on_message = self._on_message
        self.c.on_subscribe = lambda *a: self._sub.set()
        self.c.connect("127.0.0.1", port, keepalive=60)
        self.c.subscribe(topic, qos)
        self.c.loop_start()
        assert self._sub.wait(10), "no SUBACK"

    def _on_message(self, client, userdata, msg):
        with self._lock:
            self.count += 1
            if len(self.messages) < 200000:
                self.messages.append((msg.topic, msg.payload))

    def wait_count(self, n, timeout):
        t0 = time.monotonic()
        while self.count < n and time.monotonic() - t0 < timeout:
            time.sleep(0.05)
        return self.count

    def stop(self):
        self.c.loop_stop()
        self.c.disconnect()
