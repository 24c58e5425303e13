"""Reads the TensorBoard event files of a folder (TFRecord framing: length, crc, data, crc)."""
import glob
import os
import struct

from tensorboardX.proto import event_pb2


def tags(folder) -> dict:
  """{tag: kind} of every value written to the event files directly in folder: kind is
  'scalar', 'histo' or 'image'."""
  found = {}
  for path in glob.glob(os.path.join(folder, 'events.out.tfevents.*')):
    data = open(path, 'rb').read()
    at = 0
    while at < len(data):
      (length,) = struct.unpack('<Q', data[at:at + 8])
      event = event_pb2.Event.FromString(data[at + 12:at + 12 + length])
      at += 12 + length + 4
      for value in event.summary.value:
        found[value.tag] = value.WhichOneof('value').replace('simple_value', 'scalar')
  return found
