//! The TensorBoard event file of a run, written as the run goes.
//!
//! After every epoch one event goes to `events.out.tfevents.*` in the run directory: the
//! [`EPOCH`] figures as scalars (`train_loss` → `train/loss`, `test_accuracy` →
//! `test/accuracy`, `lr`, `learnable_params`, `effective_depth` when there is one, …), every
//! [`LAYER`] figure of each layer as `layer/<layer>/<figure>` and the [`CLASSIFIER`] figures as
//! `layer/classifier/<figure>` (the `metrics.csv` column with `.` read as `/`, so a new figure
//! reaches TensorBoard with no change here), and the layer-name figures (`newly_locked`,
//! `locked_layers`) as text summaries in the epochs where they change, i.e. the lock events.
//! The step of every value is its epoch.
//!
//! # Why the format is written here
//! The crates that write event files did not fit: `tfrecord` 0.15 (last release 2023) brings
//! about 130 crates, among them an HTTP client with TLS and `prost-build` for a code-generation
//! path a writer never takes; `tboard` 0.1 runs `prost-build` at build time, which needs a
//! `protoc` binary that the project's machines do not have; `tensorboard-rs` 0.5 (2022) is
//! built on `protobuf` 2, which has a published advisory, and `image` 0.23. What a scalar and a
//! text summary need is small: TFRecord framing (length, masked CRC32C of the length, data,
//! masked CRC32C of the data; `crc32c` computes the checksum) around an `Event` protobuf
//! with a `Summary`, a dozen fields in all, encoded below by their field numbers in
//! TensorFlow's `event.proto`, `summary.proto` and `tensor.proto`.
//!
//! # Crash safety
//! The file is only appended to, one whole epoch per record and write, synced after it. A crash
//! mid-write leaves at most a torn last record, which TensorBoard skips; the records before it
//! stay intact. A resumed run never appends after such a tail: it starts a new event file
//! (TensorBoard reads every event file of a directory, in name order), after reading which
//! epochs the earlier files hold so that no epoch is written twice.
//!
//! # Example
//! ```
//! use etf_runner::tensorboard::{frame, last_epoch_in, records, TensorBoard};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let mut tb = TensorBoard::open(dir.path(), true, 0).unwrap();
//! tb.log(&[]).unwrap(); // the file is created with the first epoch, so none yet
//! assert_eq!(last_epoch_in(dir.path()).unwrap(), None);
//!
//! // The framing: a torn last record is skipped, the ones before it are read.
//! let mut bytes = frame(b"epoch 1");
//! bytes.extend_from_slice(&frame(b"epoch 2")[..10]);
//! assert_eq!(records(&bytes), vec![&b"epoch 1"[..]]);
//! ```

use crate::figures::{Value, CLASSIFIER, EPOCH, LAYER};
use anyhow::{Context, Result};
use etf_train::EpochRecord;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// What every event file's name contains: TensorBoard reads the files whose names contain
/// `tfevents`.
pub const FILE_PREFIX: &str = "events.out.tfevents.";

/// The event file writer of one run directory; does nothing when TensorBoard output is off.
pub struct TensorBoard {
    dir: PathBuf,
    enabled: bool,
    /// The last epoch in this directory's event files (earlier files included).
    written: usize,
    file: Option<File>,
}

impl TensorBoard {
    /// A writer for the run directory `dir` of a run that has `done` epochs (from its
    /// checkpoint): it writes the epochs after those that both the checkpoint and the event
    /// files already hold. Event files ahead of the checkpoint (a run started afresh beside
    /// an old one's files) do not hide the new epochs: they are written again in the new file,
    /// and TensorBoard drops an earlier file's steps when the steps go back. `enabled = false`
    /// (`output.tensorboard = false`) gives a writer that writes nothing. The file itself is
    /// created with the first epoch to write.
    pub fn open(dir: &Path, enabled: bool, done: usize) -> Result<Self> {
        let written = if enabled {
            last_epoch_in(dir)?.unwrap_or(0).min(done)
        } else {
            0
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            enabled,
            written,
            file: None,
        })
    }

    /// Writes the epochs of `history` that are not in the event files yet, one record each,
    /// and syncs the file, so TensorBoard shows them at once.
    pub fn log(&mut self, history: &[EpochRecord]) -> Result<()> {
        if !self.enabled {
            return Ok(());
        }
        for (i, record) in history.iter().enumerate() {
            if record.epoch <= self.written {
                continue;
            }
            let previous = i.checked_sub(1).map(|p| &history[p]);
            let event = epoch_event(record, previous);
            self.append(&frame(&event))?;
            self.written = record.epoch;
        }
        Ok(())
    }

    /// Appends `bytes` in one write and syncs; opens a new event file (its first record the
    /// file version) on the first call.
    fn append(&mut self, bytes: &[u8]) -> Result<()> {
        let file = match &mut self.file {
            Some(file) => file,
            None => self.file.insert(new_event_file(&self.dir)?),
        };
        file.write_all(bytes)
            .and_then(|()| file.sync_data())
            .with_context(|| format!("cannot append to the event file in {}", self.dir.display()))
    }
}

/// Creates a new event file in `dir`, named after every earlier one (the time, then a count of
/// the files before it), and writes its file-version record.
fn new_event_file(dir: &Path) -> Result<File> {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let earlier = event_files(dir)?.len();
    let path = dir.join(format!("{FILE_PREFIX}{secs:010}.etf.{earlier:04}"));
    let mut file = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("cannot create the event file {}", path.display()))?;
    let mut version = Vec::new();
    put_double(&mut version, 1, wall_time());
    put_bytes(&mut version, 3, b"brain.Event:2");
    file.write_all(&frame(&version))
        .and_then(|()| file.sync_data())
        .with_context(|| format!("cannot write {}", path.display()))?;
    tracing::debug!(path = %path.display(), "TensorBoard event file");
    Ok(file)
}

/// The event files of `dir`, in the order TensorBoard reads them (by name).
pub fn event_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(files),
        Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
    };
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        if entry.file_name().to_string_lossy().contains("tfevents") {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

/// The highest step of the intact records in `dir`'s event files: the last epoch written.
pub fn last_epoch_in(dir: &Path) -> Result<Option<usize>> {
    let mut last = None;
    for path in event_files(dir)? {
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        for record in records(&bytes) {
            if let Some(step) = event_step(record) {
                last = last.max(Some(usize::try_from(step).unwrap_or(0)));
            }
        }
    }
    Ok(last)
}

/// The event of one epoch: every numeric figure as a scalar, the name figures that changed
/// since `previous` as text.
fn epoch_event(r: &EpochRecord, previous: Option<&EpochRecord>) -> Vec<u8> {
    let mut summary = Vec::new();
    for f in EPOCH.iter().filter(|f| f.name != "epoch") {
        let tag = epoch_tag(f.name);
        match (f.value)(r) {
            Value::Names(names) => {
                let before = previous.map(|p| (f.value)(p));
                if !names.is_empty() && before != Some(Value::Names(names)) {
                    put_message(&mut summary, 1, &text_value(&tag, &names.join("+")));
                }
            }
            v => put_scalar(&mut summary, &tag, v),
        }
    }
    for l in r.layers.iter().chain([&r.classifier]) {
        for f in LAYER {
            put_scalar(
                &mut summary,
                &format!("layer/{}/{}", l.name, f.name),
                (f.value)(l),
            );
        }
    }
    if let Some(c) = &r.classifier.train.classifier {
        for f in CLASSIFIER {
            put_scalar(
                &mut summary,
                &format!("layer/classifier/{}", f.name),
                (f.value)(c),
            );
        }
    }
    let mut event = Vec::new();
    put_double(&mut event, 1, wall_time());
    put_varint_field(&mut event, 2, r.epoch as u64);
    put_message(&mut event, 5, &summary);
    event
}

/// The tag of an epoch figure: `train_loss` → `train/loss`, so TensorBoard groups the train
/// and test curves; other names as they are.
pub fn epoch_tag(name: &str) -> String {
    match name.split_once('_') {
        Some((head @ ("train" | "test"), rest)) => format!("{head}/{rest}"),
        _ => name.to_string(),
    }
}

/// Adds `Summary.value { tag, simple_value }` when `v` is a number (absent values are left
/// out, as TensorBoard shows a gap).
fn put_scalar(summary: &mut Vec<u8>, tag: &str, v: Value<'_>) {
    if let Some(x) = v.number() {
        let mut value = Vec::new();
        put_bytes(&mut value, 1, tag.as_bytes());
        // simple_value is a float: TensorBoard stores scalars in single precision.
        put_fixed32(&mut value, 2, x as f32);
        put_message(summary, 1, &value);
    }
}

/// `Summary.Value` of a text summary: plugin `text`, a scalar `DT_STRING` tensor.
fn text_value(tag: &str, text: &str) -> Vec<u8> {
    let mut plugin = Vec::new();
    put_bytes(&mut plugin, 1, b"text");
    let mut metadata = Vec::new();
    put_message(&mut metadata, 1, &plugin);
    let mut tensor = Vec::new();
    put_varint_field(&mut tensor, 1, 7); // DT_STRING
    put_message(&mut tensor, 2, &[]); // shape of a scalar: no dimensions
    put_bytes(&mut tensor, 8, text.as_bytes());
    let mut value = Vec::new();
    put_bytes(&mut value, 1, tag.as_bytes());
    put_message(&mut value, 9, &metadata);
    put_message(&mut value, 8, &tensor);
    value
}

fn wall_time() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The checksum TFRecord stores: CRC32C, rotated and offset so that a CRC of data holding CRCs
/// stays well distributed.
pub fn masked_crc(bytes: &[u8]) -> u32 {
    let crc = crc32c::crc32c(bytes);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// One TFRecord: `u64` length, masked CRC of the length, the data, masked CRC of the data
/// (all little-endian).
pub fn frame(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc(data).to_le_bytes());
    out
}

/// The data of the intact records of a TFRecord file, up to the first torn or corrupt one.
pub fn records(bytes: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while let Some((data, next)) = split_record(rest) {
        out.push(data);
        rest = next;
    }
    out
}

fn split_record(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let len_bytes = b.get(..8)?;
    let crc = u32::from_le_bytes(b.get(8..12)?.try_into().ok()?);
    if crc != masked_crc(len_bytes) {
        return None;
    }
    let len = usize::try_from(u64::from_le_bytes(len_bytes.try_into().ok()?)).ok()?;
    let end = 12usize.checked_add(len)?;
    let data = b.get(12..end)?;
    let crc = u32::from_le_bytes(b.get(end..end.checked_add(4)?)?.try_into().ok()?);
    (crc == masked_crc(data)).then(|| (data, &b[end + 4..]))
}

/// `Event.step` (field 2) of an encoded event, when it has one.
fn event_step(mut b: &[u8]) -> Option<i64> {
    let mut step = None;
    while !b.is_empty() {
        let key = take_varint(&mut b)?;
        match (key >> 3, key & 7) {
            (2, 0) => step = Some(take_varint(&mut b)? as i64),
            (_, 0) => {
                take_varint(&mut b)?;
            }
            (_, 1) => b = b.get(8..)?,
            (_, 2) => {
                let n = usize::try_from(take_varint(&mut b)?).ok()?;
                b = b.get(n..)?;
            }
            (_, 5) => b = b.get(4..)?,
            _ => return None,
        }
    }
    step
}

fn take_varint(b: &mut &[u8]) -> Option<u64> {
    let mut x = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = b.split_first()?;
        *b = rest;
        x |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Some(x);
        }
    }
    None
}

fn put_varint(out: &mut Vec<u8>, mut x: u64) {
    while x >= 0x80 {
        out.push((x as u8 & 0x7f) | 0x80);
        x >>= 7;
    }
    out.push(x as u8);
}

/// Protobuf key: field number and wire type (0 varint, 1 64-bit, 2 length-delimited, 5 32-bit).
fn put_key(out: &mut Vec<u8>, field: u32, wire: u8) {
    put_varint(out, (u64::from(field) << 3) | u64::from(wire));
}

fn put_varint_field(out: &mut Vec<u8>, field: u32, x: u64) {
    put_key(out, field, 0);
    put_varint(out, x);
}

fn put_double(out: &mut Vec<u8>, field: u32, x: f64) {
    put_key(out, field, 1);
    out.extend_from_slice(&x.to_le_bytes());
}

fn put_fixed32(out: &mut Vec<u8>, field: u32, x: f32) {
    put_key(out, field, 5);
    out.extend_from_slice(&x.to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_key(out, field, 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn put_message(out: &mut Vec<u8>, field: u32, message: &[u8]) {
    put_bytes(out, field, message);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_masked_crc_is_tensorflows() {
        // CRC32C("123456789") = 0xe3069283 (RFC 3720's check value), then TensorFlow's mask.
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(
            masked_crc(b"123456789"),
            0xe306_9283_u32.rotate_right(15).wrapping_add(0xa282_ead8)
        );
        // An empty record's length field, as TensorFlow's own writer frames it.
        let f = frame(b"");
        assert_eq!(f.len(), 16);
        assert_eq!(&f[..8], &[0; 8]);
    }

    #[test]
    fn records_read_back_and_a_torn_tail_is_skipped() {
        let mut bytes = frame(b"first");
        bytes.extend(frame(b"second"));
        let whole = bytes.len();
        bytes.extend(frame(b"third, torn"));
        bytes.truncate(whole + 13);
        assert_eq!(records(&bytes), vec![&b"first"[..], &b"second"[..]]);
        let mut corrupt = frame(b"bad");
        corrupt[13] ^= 1;
        assert!(records(&corrupt).is_empty());
    }

    #[test]
    fn varints_and_steps_round_trip() {
        let mut e = Vec::new();
        put_double(&mut e, 1, 1.5);
        put_bytes(&mut e, 3, b"brain.Event:2");
        assert_eq!(event_step(&e), None);
        put_varint_field(&mut e, 2, 300);
        put_message(&mut e, 5, &[0x0a, 0x00]);
        assert_eq!(event_step(&e), Some(300));
        let mut b: &[u8] = &[0xac, 0x02];
        assert_eq!(take_varint(&mut b), Some(300));
    }

    #[test]
    fn tags_group_train_and_test() {
        assert_eq!(epoch_tag("train_loss"), "train/loss");
        assert_eq!(epoch_tag("test_accuracy"), "test/accuracy");
        assert_eq!(epoch_tag("learnable_params"), "learnable_params");
        assert_eq!(epoch_tag("lr"), "lr");
    }

    #[test]
    fn the_file_grows_by_one_record_per_epoch_and_a_resume_starts_a_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let h = crate::output::sample::history();
        let mut tb = TensorBoard::open(dir.path(), true, 0).unwrap();
        tb.log(&h[..1]).unwrap();
        let files = event_files(dir.path()).unwrap();
        assert_eq!(files.len(), 1);
        let one = std::fs::read(&files[0]).unwrap();
        assert_eq!(records(&one).len(), 2, "file version, epoch 1");
        tb.log(&h).unwrap();
        let all = std::fs::read(&files[0]).unwrap();
        assert!(all.len() > one.len());
        assert_eq!(records(&all).len(), 1 + h.len());
        assert_eq!(&all[..one.len()], &one[..], "only appended to");
        // A resumed run: a torn tail, then a new writer that writes nothing already there.
        std::fs::write(&files[0], &all[..all.len() - 3]).unwrap();
        let mut resumed = TensorBoard::open(dir.path(), true, h.len()).unwrap();
        assert_eq!(resumed.written, h.len() - 1);
        resumed.log(&h).unwrap();
        let files = event_files(dir.path()).unwrap();
        assert_eq!(files.len(), 2);
        let second = std::fs::read(&files[1]).unwrap();
        assert_eq!(records(&second).len(), 2, "file version, the last epoch");
        assert_eq!(last_epoch_in(dir.path()).unwrap(), Some(h.len()));
        // A fresh start beside old event files writes every epoch again.
        assert_eq!(TensorBoard::open(dir.path(), true, 0).unwrap().written, 0);
    }

    #[test]
    fn switched_off_it_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let h = crate::output::sample::history();
        TensorBoard::open(dir.path(), false, 0)
            .unwrap()
            .log(&h)
            .unwrap();
        assert!(event_files(dir.path()).unwrap().is_empty());
    }
}
