"""Gives a headless mutter's seat a keyboard, as a user's would be: without one no window ever
has keyboard focus, so none is active. A remote-desktop session of mutter's own makes virtual
input devices; it lasts as long as this program.

Usage: gnome_keyboard.py (on the session bus of DBUS_SESSION_BUS_ADDRESS); prints "ready".
"""
from gi.repository import Gio, GLib

DEST = "org.gnome.Mutter.RemoteDesktop"
bus = Gio.bus_get_sync(Gio.BusType.SESSION)
(session,) = bus.call_sync(DEST, "/org/gnome/Mutter/RemoteDesktop", DEST, "CreateSession", None, GLib.VariantType("(o)"), 0, 5000, None).unpack()
bus.call_sync(DEST, session, DEST + ".Session", "Start", None, None, 0, 5000, None)
# A press and release of Shift: the keyboard exists once it has been used.
for pressed in (True, False):
    bus.call_sync(DEST, session, DEST + ".Session", "NotifyKeyboardKeycode", GLib.Variant("(ub)", (42, pressed)), None, 0, 5000, None)
print("ready", flush=True)
GLib.MainLoop().run()
