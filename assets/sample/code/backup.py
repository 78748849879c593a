"""Nightly backup of the photos folder to the external drive."""
import shutil
import datetime
from pathlib import Path

SOURCE = Path.home() / "Pictures"
TARGET = Path("/media/backup-drive/photos")


def backup():
    stamp = datetime.date.today().isoformat()
    dest = TARGET / stamp
    shutil.copytree(SOURCE, dest, dirs_exist_ok=True)
    return dest


if __name__ == "__main__":
    print("backed up to", backup())
