//! Opening and validating GGUF files.
//!
//! The header is parsed here, not by candle: a GGUF file is untrusted input
//! (an admin's import, or whatever lies in the models folder), and candle's
//! reader trusts values it later divides or multiplies by (an alignment of
//! 0 divides by zero; tensor dimensions whose product overflows panic).
//! Every count, length, dimension, offset and the alignment is checked
//! against the limits below and against the file's size, with checked
//! arithmetic and without recursion, before candle's `Content` is built
//! from the result; then every tensor's byte range is known to lie inside
//! the file, so a truncated download fails at open with a clear message
//! instead of deep inside model loading.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use candle_core::quantized::GgmlDType;
use candle_core::quantized::gguf_file::{Content, TensorInfo, Value, VersionedMagic};

use crate::InferenceError;

/// An opened, validated GGUF file.
#[derive(Debug)]
pub struct GgufFile {
    path: PathBuf,
    content: Content,
}

fn invalid(path: &Path, reason: impl Into<String>) -> InferenceError {
    InferenceError::InvalidGguf {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

/// Opens `path` for buffered reading (reading GGUF unbuffered costs
/// 130–200 ms at load in small reads).
pub(crate) fn open_reader(path: &Path) -> Result<BufReader<File>, InferenceError> {
    let file = File::open(path).map_err(|e| InferenceError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    Ok(BufReader::with_capacity(1 << 20, file))
}

impl GgufFile {
    /// Reads and checks the header, metadata and tensor index (see the
    /// module docs); every tensor lies inside the file.
    pub fn open(path: &Path) -> Result<Self, InferenceError> {
        let file_len = std::fs::metadata(path)
            .map_err(|e| InferenceError::Io {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?
            .len();
        let reader = open_reader(path)?;
        let content = parse(reader, file_len).map_err(|reason| invalid(path, reason))?;
        Ok(GgufFile {
            path: path.to_owned(),
            content,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Header, metadata and tensor index.
    pub fn content(&self) -> &Content {
        &self.content
    }

    /// Gives up the parsed content (model loading consumes it).
    pub fn into_content(self) -> Content {
        self.content
    }

    /// A metadata string.
    pub fn metadata_str(&self, key: &str) -> Option<&str> {
        self.content
            .metadata
            .get(key)
            .and_then(|v| v.to_string().ok())
            .map(String::as_str)
    }

    /// A metadata unsigned integer of any width.
    pub fn metadata_u64(&self, key: &str) -> Option<u64> {
        match self.content.metadata.get(key)? {
            Value::U8(v) => Some(u64::from(*v)),
            Value::U16(v) => Some(u64::from(*v)),
            Value::U32(v) => Some(u64::from(*v)),
            Value::U64(v) => Some(*v),
            Value::I32(v) => u64::try_from(*v).ok(),
            Value::I64(v) => u64::try_from(*v).ok(),
            _ => None,
        }
    }

    /// `general.architecture`, e.g. `llama`.
    pub fn architecture(&self) -> Result<&str, InferenceError> {
        self.metadata_str("general.architecture")
            .ok_or_else(|| InferenceError::Metadata("general.architecture is missing".into()))
    }

    /// The context length the model was trained for, if the file says.
    pub fn context_length(&self) -> Option<usize> {
        let arch = self.architecture().ok()?;
        self.metadata_u64(&format!("{arch}.context_length"))
            .and_then(|v| usize::try_from(v).ok())
    }

    /// The most common tensor type by element count, e.g. `Q4_1` (the file's
    /// quantization in practice).
    pub fn quantization(&self) -> String {
        let mut by_type: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
        for t in self.content.tensor_infos.values() {
            *by_type.entry(format!("{:?}", t.ggml_dtype)).or_default() +=
                t.shape.elem_count() as u64;
        }
        by_type
            .into_iter()
            .max_by_key(|(_, n)| *n)
            .map(|(t, _)| t.to_uppercase())
            .unwrap_or_default()
    }

    /// Total parameter count, from the tensor shapes.
    pub fn parameter_count(&self) -> u64 {
        self.content
            .tensor_infos
            .values()
            .map(|t| t.shape.elem_count() as u64)
            .sum()
    }
}

/// Most tensors a file may declare.
const MAX_TENSORS: u64 = 1 << 20;
/// Most metadata entries a file may declare.
const MAX_METADATA: u64 = 1 << 20;
/// Longest metadata key.
const MAX_KEY_BYTES: u64 = 1 << 10;
/// Longest tensor name (llama.cpp's limit is 64).
const MAX_NAME_BYTES: u64 = 256;
/// Longest string value (chat templates are the long ones, a few KiB).
const MAX_STRING_BYTES: u64 = 16 << 20;
/// Most elements of one array (vocabularies and merges: up to ~1M).
const MAX_ARRAY_ITEMS: u64 = 1 << 22;
/// Most array elements in the whole file, which bounds the memory the
/// parsed metadata takes whatever the file's size.
const MAX_TOTAL_ITEMS: u64 = 1 << 23;
/// ggml's `GGML_MAX_DIMS`.
const MAX_DIMS: u32 = 4;
/// Largest `general.alignment` accepted.
const MAX_ALIGNMENT: u64 = 1 << 20;
/// The alignment when the file does not say (the GGUF spec's default).
const DEFAULT_ALIGNMENT: u64 = 32;

/// GGUF value type ids.
mod value_type {
    pub const U8: u32 = 0;
    pub const I8: u32 = 1;
    pub const U16: u32 = 2;
    pub const I16: u32 = 3;
    pub const U32: u32 = 4;
    pub const I32: u32 = 5;
    pub const F32: u32 = 6;
    pub const BOOL: u32 = 7;
    pub const STRING: u32 = 8;
    pub const ARRAY: u32 = 9;
    pub const U64: u32 = 10;
    pub const I64: u32 = 11;
    pub const F64: u32 = 12;
}

/// The ggml tensor types candle reads, by their GGUF id.
fn ggml_dtype(id: u32) -> Option<GgmlDType> {
    Some(match id {
        0 => GgmlDType::F32,
        1 => GgmlDType::F16,
        2 => GgmlDType::Q4_0,
        3 => GgmlDType::Q4_1,
        6 => GgmlDType::Q5_0,
        7 => GgmlDType::Q5_1,
        8 => GgmlDType::Q8_0,
        9 => GgmlDType::Q8_1,
        10 => GgmlDType::Q2K,
        11 => GgmlDType::Q3K,
        12 => GgmlDType::Q4K,
        13 => GgmlDType::Q5K,
        14 => GgmlDType::Q6K,
        15 => GgmlDType::Q8K,
        30 => GgmlDType::BF16,
        _ => return None,
    })
}

/// A bounds-checked little-endian reader over the header. Every read
/// first checks the bytes are left in the file, so a length read from the
/// file never sizes an allocation larger than the file.
struct Header<R> {
    reader: R,
    pos: u64,
    len: u64,
    /// GGUF v1 has 32-bit lengths and dimensions; v2 and v3 64-bit.
    wide: bool,
    /// Array elements read so far (bounded by [`MAX_TOTAL_ITEMS`]).
    items: u64,
}

impl<R: Read> Header<R> {
    fn remaining(&self) -> u64 {
        self.len.saturating_sub(self.pos)
    }

    fn take<const N: usize>(&mut self, what: &str) -> Result<[u8; N], String> {
        if self.remaining() < N as u64 {
            return Err(format!("the file ends inside {what}"));
        }
        let mut buf = [0u8; N];
        self.reader
            .read_exact(&mut buf)
            .map_err(|e| format!("cannot read {what}: {e}"))?;
        self.pos += N as u64;
        Ok(buf)
    }

    fn u8(&mut self, what: &str) -> Result<u8, String> {
        Ok(self.take::<1>(what)?[0])
    }

    fn u16(&mut self, what: &str) -> Result<u16, String> {
        Ok(u16::from_le_bytes(self.take(what)?))
    }

    fn u32(&mut self, what: &str) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(what)?))
    }

    /// A length or count: 32 bits in v1, 64 bits after.
    fn length(&mut self, what: &str) -> Result<u64, String> {
        if self.wide {
            self.u64(what)
        } else {
            self.u32(what).map(u64::from)
        }
    }

    /// Bytes a length prefix takes.
    fn prefix(&self) -> u64 {
        if self.wide { 8 } else { 4 }
    }

    /// A length-prefixed string of at most `max` bytes (trailing NULs
    /// dropped, invalid UTF-8 replaced, as candle does).
    fn string(&mut self, max: u64, what: &str) -> Result<String, String> {
        let len = self.length(what)?;
        if len > max {
            return Err(format!("{what} is {len} bytes long (at most {max})"));
        }
        if len > self.remaining() {
            return Err(format!(
                "{what} of {len} bytes runs past the end of the file"
            ));
        }
        // len <= remaining <= file size, and <= max: it fits in memory.
        let mut bytes = vec![0u8; len as usize];
        self.reader
            .read_exact(&mut bytes)
            .map_err(|e| format!("cannot read {what}: {e}"))?;
        self.pos += len;
        while bytes.last() == Some(&0) {
            bytes.pop();
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Smallest on-disk size of one value of type `ty` (`None`: unknown).
    fn min_size(&self, ty: u32) -> Option<u64> {
        use value_type::*;
        Some(match ty {
            U8 | I8 | BOOL => 1,
            U16 | I16 => 2,
            U32 | I32 | F32 => 4,
            U64 | I64 | F64 => 8,
            STRING => self.prefix(),
            _ => return None,
        })
    }

    /// One value that is not an array.
    fn scalar(&mut self, ty: u32, key: &str) -> Result<Value, String> {
        use value_type::*;
        let w = key;
        Ok(match ty {
            U8 => Value::U8(self.u8(w)?),
            I8 => Value::I8(self.u8(w)? as i8),
            U16 => Value::U16(self.u16(w)?),
            I16 => Value::I16(self.u16(w)? as i16),
            U32 => Value::U32(self.u32(w)?),
            I32 => Value::I32(self.u32(w)? as i32),
            U64 => Value::U64(self.u64(w)?),
            I64 => Value::I64(self.u64(w)? as i64),
            F32 => Value::F32(f32::from_bits(self.u32(w)?)),
            F64 => Value::F64(f64::from_bits(self.u64(w)?)),
            BOOL => match self.u8(w)? {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => return Err(format!("{key} is a boolean of value {b}")),
            },
            STRING => Value::String(self.string(MAX_STRING_BYTES, w)?),
            ARRAY => {
                return Err(format!(
                    "{key} is an array of arrays, which is not supported"
                ));
            }
            other => return Err(format!("{key} has the unknown value type {other}")),
        })
    }

    /// A value of type `ty`; arrays hold scalars or strings only, so this
    /// never recurses.
    fn value(&mut self, ty: u32, key: &str) -> Result<Value, String> {
        if ty != value_type::ARRAY {
            return self.scalar(ty, key);
        }
        let item_ty = self.u32(&format!("the element type of {key}"))?;
        let Some(min) = self.min_size(item_ty) else {
            return Err(if item_ty == value_type::ARRAY {
                format!("{key} is an array of arrays, which is not supported")
            } else {
                format!("{key} has the unknown element type {item_ty}")
            });
        };
        let len = self.length(&format!("the length of {key}"))?;
        if len > MAX_ARRAY_ITEMS {
            return Err(format!(
                "{key} has {len} elements (at most {MAX_ARRAY_ITEMS})"
            ));
        }
        if len.saturating_mul(min) > self.remaining() {
            return Err(format!(
                "{key} has {len} elements, more than the rest of the file holds"
            ));
        }
        self.items = self.items.saturating_add(len);
        if self.items > MAX_TOTAL_ITEMS {
            return Err(format!(
                "the metadata holds more than {MAX_TOTAL_ITEMS} array elements"
            ));
        }
        let mut items = Vec::new();
        for _ in 0..len {
            items.push(self.scalar(item_ty, key)?);
        }
        Ok(Value::Array(items))
    }
}

/// `general.alignment`: absent means 32; otherwise an unsigned 32-bit
/// power of two of at most [`MAX_ALIGNMENT`] (as llama.cpp requires).
fn alignment(metadata: &HashMap<String, Value>) -> Result<u64, String> {
    match metadata.get("general.alignment") {
        None => Ok(DEFAULT_ALIGNMENT),
        Some(Value::U32(a)) if a.is_power_of_two() && u64::from(*a) <= MAX_ALIGNMENT => {
            Ok(u64::from(*a))
        }
        Some(Value::U32(a)) => Err(format!(
            "general.alignment is {a}: it must be a power of two from 1 to {MAX_ALIGNMENT}"
        )),
        Some(other) => Err(format!(
            "general.alignment must be an unsigned 32-bit integer, not {:?}",
            other.value_type()
        )),
    }
}

/// Parses and checks a whole GGUF header; the reason on failure.
fn parse(reader: impl Read, file_len: u64) -> Result<Content, String> {
    let mut h = Header {
        reader,
        pos: 0,
        len: file_len,
        wide: true,
        items: 0,
    };
    let magic = h.take::<4>("the magic")?;
    if &magic != b"GGUF" {
        return Err("not a GGUF file (it does not start with the GGUF magic)".into());
    }
    let version = match h.u32("the version")? {
        1 => VersionedMagic::GgufV1,
        2 => VersionedMagic::GgufV2,
        3 => VersionedMagic::GgufV3,
        v => return Err(format!("GGUF version {v} is not supported (1 to 3 are)")),
    };
    h.wide = !matches!(version, VersionedMagic::GgufV1);
    let tensor_count = h.length("the tensor count")?;
    let kv_count = h.length("the metadata count")?;
    if tensor_count == 0 {
        return Err("it contains no tensors".into());
    }
    if tensor_count > MAX_TENSORS || kv_count > MAX_METADATA {
        return Err(format!(
            "it declares {tensor_count} tensors and {kv_count} metadata entries \
             (at most {MAX_TENSORS} and {MAX_METADATA})"
        ));
    }
    // Each entry takes at least a length prefix and a type (a metadata
    // entry also a 1-byte value; a tensor a dimension count, type, offset).
    let least = kv_count
        .saturating_mul(h.prefix() + 5)
        .saturating_add(tensor_count.saturating_mul(h.prefix() + 16));
    if least > h.remaining() {
        return Err(format!(
            "it declares {tensor_count} tensors and {kv_count} metadata entries, \
             more than the file holds"
        ));
    }

    let mut metadata = HashMap::new();
    for _ in 0..kv_count {
        let key = h.string(MAX_KEY_BYTES, "a metadata key")?;
        let ty = h.u32(&format!("the type of {key}"))?;
        let value = h.value(ty, &key)?;
        if metadata.insert(key.clone(), value).is_some() {
            return Err(format!("the metadata key {key} appears twice"));
        }
    }
    let align = alignment(&metadata)?;

    // (name, dims in GGUF order, type, offset, bytes)
    let mut infos = Vec::new();
    let mut names = std::collections::HashSet::new();
    for _ in 0..tensor_count {
        let name = h.string(MAX_NAME_BYTES, "a tensor name")?;
        let n_dims = h.u32(&format!("the dimension count of tensor {name}"))?;
        if n_dims == 0 || n_dims > MAX_DIMS {
            return Err(format!(
                "tensor {name} has {n_dims} dimensions (1 to {MAX_DIMS} are valid)"
            ));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            dims.push(h.length(&format!("the dimensions of tensor {name}"))?);
        }
        let type_id = h.u32(&format!("the type of tensor {name}"))?;
        let offset = h.u64(&format!("the offset of tensor {name}"))?;
        let dtype = ggml_dtype(type_id)
            .ok_or_else(|| format!("tensor {name} has the unknown type {type_id}"))?;
        if dims.contains(&0) {
            return Err(format!("tensor {name} has an empty dimension {dims:?}"));
        }
        let elems = dims
            .iter()
            .try_fold(1u64, |n, d| n.checked_mul(*d))
            .filter(|n| i64::try_from(*n).is_ok() && usize::try_from(*n).is_ok())
            .ok_or_else(|| format!("tensor {name} has too many elements {dims:?}"))?;
        let block = dtype.block_size() as u64;
        if !dims[0].is_multiple_of(block) {
            return Err(format!(
                "tensor {name}: rows of {} elements are not a whole number of {dtype:?} blocks",
                dims[0]
            ));
        }
        let bytes = (elems / block)
            .checked_mul(dtype.type_size() as u64)
            .filter(|b| usize::try_from(*b).is_ok())
            .ok_or_else(|| format!("tensor {name} is too large"))?;
        if !offset.is_multiple_of(align) {
            return Err(format!(
                "tensor {name} starts at offset {offset}, not a multiple of the alignment {align}"
            ));
        }
        if !names.insert(name.clone()) {
            return Err(format!("the tensor {name} appears twice"));
        }
        infos.push((name, dims, dtype, offset, bytes));
    }

    let data_offset = h
        .pos
        .div_ceil(align)
        .checked_mul(align)
        .filter(|d| *d <= file_len)
        .ok_or("the tensor data starts past the end of the file")?;
    let mut tensor_infos = HashMap::with_capacity(infos.len());
    for (name, mut dims, dtype, offset, bytes) in infos {
        let end = data_offset
            .checked_add(offset)
            .and_then(|start| start.checked_add(bytes));
        match end {
            Some(end) if end <= file_len => {}
            _ => {
                return Err(format!(
                    "tensor {name} ends past the end of the file ({file_len} bytes; \
                     truncated or corrupt download?)"
                ));
            }
        }
        // GGUF lists dimensions fastest first; candle's shapes are the
        // other way round. Each fits a usize: their product does.
        dims.reverse();
        let shape: Vec<usize> = dims.iter().map(|d| *d as usize).collect();
        tensor_infos.insert(
            name,
            TensorInfo {
                ggml_dtype: dtype,
                shape: candle_core::Shape::from(shape),
                offset,
            },
        );
    }
    Ok(Content {
        magic: version,
        metadata,
        tensor_infos,
        tensor_data_offset: data_offset,
    })
}
