"""A GTK 3 window for the capture tests and bench/daemon.sh.

Usage: gtk_window.py APP_ID TITLE TEXT_FILE [edit | browser ADDRESS]
Shows the file's text in a label, or with `edit` in a text view that takes typing; `browser`
puts an address bar above the label, named as Chromium names its own.
"""
import sys

import gi

gi.require_version("Gtk", "3.0")
from gi.repository import GLib, Gtk, Pango  # noqa: E402

app_id, title, path = sys.argv[1:4]
edit = sys.argv[4:5] == ["edit"]
address = sys.argv[5] if sys.argv[4:5] == ["browser"] else None
# On Wayland, GTK 3 sends the program name as the window's app_id.
GLib.set_prgname(app_id)
with open(path, encoding="utf-8") as f:
    text = f.read()
window = Gtk.Window(title=title)
if edit:
    view = Gtk.TextView()
    view.set_wrap_mode(Gtk.WrapMode.WORD_CHAR)
    buffer = view.get_buffer()
    buffer.set_text(text)
    # Typing goes at the end, as in an editor where one writes on.
    buffer.place_cursor(buffer.get_end_iter())
    view.modify_font(Pango.FontDescription("Noto Sans CJK SC 12"))
    shown = Gtk.ScrolledWindow()
    shown.add(view)
else:
    shown = Gtk.Label()
    shown.set_markup('<span font="Noto Sans CJK SC 16">' + GLib.markup_escape_text(text) + "</span>")
    shown.set_xalign(0)
    shown.set_yalign(0)
if address is not None:
    bar = Gtk.Entry()
    bar.set_text(address)
    bar.get_accessible().set_name("Address and search bar")
    page = Gtk.Box(orientation=Gtk.Orientation.VERTICAL)
    page.pack_start(bar, False, False, 0)
    page.pack_start(shown, True, True, 0)
    shown = page
window.add(shown)
window.set_default_size(1400, 1000 if edit else 500)
window.connect("destroy", Gtk.main_quit)
window.show_all()
Gtk.main()
