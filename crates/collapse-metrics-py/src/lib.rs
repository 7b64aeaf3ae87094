//! Python bindings of `collapse-metrics`: the streaming accumulators and `collapse_report`,
//! numpy arrays in, the report as a dict with the Rust report's JSON keys out. No torch.
//!
//! Arguments are checked here (type, rank, dtype) and by the Rust core (shapes against each
//! other, label range, finiteness); every bad input raises `ValueError` naming the argument.

use std::sync::Mutex;

use ::collapse_metrics::{self as core, GlobalMean, Matrix, MetricsError, Values};
use numpy::{
    PyArray1, PyArrayDescrMethods, PyArrayMethods, PyReadonlyArray1, PyUntypedArray,
    PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;

/// A core error as the Python exception a caller expects: bad input is a `ValueError`.
fn py_err(err: MetricsError) -> PyErr {
    match err {
        MetricsError::NoConvergence { .. } => PyRuntimeError::new_err(err.to_string()),
        _ => PyValueError::new_err(err.to_string()),
    }
}

fn global_mean(name: &str) -> PyResult<GlobalMean> {
    match name {
        "weighted" => Ok(GlobalMean::Weighted),
        "unweighted" => Ok(GlobalMean::Unweighted),
        other => Err(PyValueError::new_err(format!(
            "global_mean must be 'weighted' or 'unweighted', got {other:?}"
        ))),
    }
}

/// `value` as a C-contiguous numpy array of rank `ndim` (converted with `numpy.asarray` and
/// `numpy.ascontiguousarray`, which copy only when needed).
fn array<'py>(
    value: &Bound<'py, PyAny>,
    name: &str,
    ndim: usize,
    what: &str,
) -> PyResult<Bound<'py, PyUntypedArray>> {
    let np = value.py().import("numpy")?;
    let arr = np
        .call_method1("asarray", (value,))
        .map_err(|e| PyValueError::new_err(format!("{name}: not an array ({e})")))?;
    let arr = np.call_method1("ascontiguousarray", (arr,))?;
    let arr = arr.cast_into::<PyUntypedArray>()?;
    if arr.ndim() != ndim {
        return Err(PyValueError::new_err(format!(
            "{name} must be {ndim}-D {what}, got shape {:?}",
            arr.shape()
        )));
    }
    Ok(arr)
}

/// Real values of a float32/float64 array.
enum Floats<'py> {
    F32(PyReadonlyArray1<'py, f32>, Vec<usize>),
    F64(PyReadonlyArray1<'py, f64>, Vec<usize>),
}

impl Floats<'_> {
    fn values(&self) -> Values<'_> {
        match self {
            Floats::F32(a, _) => Values::F32(a.as_slice().expect("contiguous")),
            Floats::F64(a, _) => Values::F64(a.as_slice().expect("contiguous")),
        }
    }

    fn shape(&self) -> &[usize] {
        match self {
            Floats::F32(_, s) | Floats::F64(_, s) => s,
        }
    }

    fn matrix(&self) -> PyResult<Matrix<'_>> {
        let s = self.shape();
        Matrix::new(self.values(), s[0], s[1]).map_err(py_err)
    }
}

/// A float32 or float64 array of rank `ndim`, flattened (a view, no copy).
fn floats<'py>(
    value: &Bound<'py, PyAny>,
    name: &str,
    ndim: usize,
    what: &str,
) -> PyResult<Floats<'py>> {
    let arr = array(value, name, ndim, what)?;
    let shape = arr.shape().to_vec();
    let dtype = arr.dtype();
    let flat = arr.call_method1("reshape", (-1,))?;
    match (dtype.kind(), dtype.itemsize()) {
        (b'f', 4) => Ok(Floats::F32(flat.extract()?, shape)),
        (b'f', 8) => Ok(Floats::F64(flat.extract()?, shape)),
        _ => Err(PyValueError::new_err(format!(
            "{name} must have dtype float32 or float64, got {}; convert with .astype(numpy.float32)",
            dtype.str()?
        ))),
    }
}

/// Integer labels as int64 (numpy's cast; any integer dtype).
fn labels<'py>(value: &Bound<'py, PyAny>) -> PyResult<PyReadonlyArray1<'py, i64>> {
    let arr = array(value, "labels", 1, "[batch]")?;
    let dtype = arr.dtype();
    if !matches!(dtype.kind(), b'i' | b'u') {
        return Err(PyValueError::new_err(format!(
            "labels must have an integer dtype, got {}",
            dtype.str()?
        )));
    }
    arr.call_method1("astype", ("int64",))?
        .extract::<PyReadonlyArray1<'py, i64>>()
}

/// The optional classifier `weight` `[C, d]` and `bias` `[C]` as arrays.
fn classifier_arrays<'py>(
    weight: Option<&Bound<'py, PyAny>>,
    bias: Option<&Bound<'py, PyAny>>,
) -> PyResult<Option<(Floats<'py>, Option<Floats<'py>>)>> {
    match (weight, bias) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err(PyValueError::new_err("bias given without weight")),
        (Some(w), b) => Ok(Some((
            floats(w, "weight", 2, "[num_classes, dim]")?,
            b.map(|b| floats(b, "bias", 1, "[num_classes]"))
                .transpose()?,
        ))),
    }
}

fn classifier<'a>(
    arrays: &'a Option<(Floats<'_>, Option<Floats<'_>>)>,
) -> PyResult<Option<core::Classifier<'a>>> {
    arrays
        .as_ref()
        .map(|(w, b)| {
            Ok(core::Classifier {
                weight: w.matrix()?,
                bias: b.as_ref().map(Floats::values),
            })
        })
        .transpose()
}

/// The report as a dict with the keys of the Rust report's JSON (NaN stays a float NaN).
fn report_dict<'py>(py: Python<'py>, report: &core::CollapseReport) -> PyResult<Bound<'py, PyAny>> {
    pythonize::pythonize(py, report).map_err(|e| PyRuntimeError::new_err(e.to_string()))
}

/// Both passes over in-memory features: the neural-collapse report of one layer.
///
/// features: [N, d] float32/float64; labels: [N] integers in 0..num_classes; weight: [C, d]
/// and bias: [C] of a linear classifier reading these features (optional); global_mean:
/// "weighted" (mean of all samples) or "unweighted" (mean of the class means).
/// Returns a dict: nc1, equinorm, equiangularity, max_angle, etf_error, cdnv, ncc_accuracy,
/// ..., and classifier (nc3, nc4, accuracy and the NC2 measures of W) or None.
#[pyfunction]
#[pyo3(signature = (features, labels, num_classes, weight=None, bias=None, global_mean="weighted"))]
fn collapse_report<'py>(
    py: Python<'py>,
    features: &Bound<'py, PyAny>,
    labels: &Bound<'py, PyAny>,
    num_classes: usize,
    weight: Option<&Bound<'py, PyAny>>,
    bias: Option<&Bound<'py, PyAny>>,
    global_mean: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let gm = self::global_mean(global_mean)?;
    let features = floats(features, "features", 2, "[batch, dim]")?;
    let labels = self::labels(labels)?;
    let arrays = classifier_arrays(weight, bias)?;
    let (f, y, clf) = (features.matrix()?, labels.as_slice()?, classifier(&arrays)?);
    let report = py
        .detach(|| core::collapse_report(f, y, num_classes, clf, gm))
        .map_err(py_err)?;
    report_dict(py, &report)
}

/// Effective depth: the smallest 1-based layer index whose NCC accuracy is >= tau, or None.
#[pyfunction]
fn effective_depth(ncc_accuracies: Vec<f64>, tau: f64) -> Option<usize> {
    core::effective_depth(&ncc_accuracies, tau)
}

/// Pass 1: per-class feature sums and counts (f64). Call update() with every batch of a
/// layer's features, then finalize().
#[pyclass(module = "collapse_metrics")]
struct ClassMeans {
    // A Mutex makes the class Sync for any build of the core; finalize() takes the value.
    inner: Mutex<Option<core::ClassMeans>>,
}

fn finalized() -> PyErr {
    PyRuntimeError::new_err("finalize() was already called on this accumulator")
}

/// Checks a batch and hands it to `add` with the GIL released.
fn update<'py, A: Send>(
    py: Python<'py>,
    inner: &Mutex<Option<A>>,
    features: &Bound<'py, PyAny>,
    labels: &Bound<'py, PyAny>,
    add: impl FnOnce(&mut A, Matrix<'_>, &[i64]) -> Result<(), MetricsError> + Send,
) -> PyResult<()> {
    let features = floats(features, "features", 2, "[batch, dim]")?;
    let labels = self::labels(labels)?;
    let (f, y) = (features.matrix()?, labels.as_slice()?);
    let mut guard = inner.lock().expect("not poisoned");
    let acc = guard.as_mut().ok_or_else(finalized)?;
    py.detach(|| add(acc, f, y)).map_err(py_err)
}

/// The accumulator, which finalize() consumes.
fn take<A>(inner: &Mutex<Option<A>>) -> PyResult<A> {
    inner
        .lock()
        .expect("not poisoned")
        .take()
        .ok_or_else(finalized)
}

#[pymethods]
impl ClassMeans {
    #[new]
    fn new(num_classes: usize, dim: usize) -> PyResult<Self> {
        let inner = core::ClassMeans::new(num_classes, dim).map_err(py_err)?;
        Ok(ClassMeans {
            inner: Mutex::new(Some(inner)),
        })
    }

    /// Adds a batch: features [B, dim] float32/float64, labels [B] integers. On error
    /// nothing is added.
    fn update<'py>(
        &self,
        py: Python<'py>,
        features: &Bound<'py, PyAny>,
        labels: &Bound<'py, PyAny>,
    ) -> PyResult<()> {
        update(py, &self.inner, features, labels, |acc, f, y| {
            acc.update(f, y)
        })
    }

    /// The class means and the statistics pass 2 needs. global_mean: "weighted" or
    /// "unweighted"; rtol: relative tolerance of the pseudo-inverse of Sigma_B.
    #[pyo3(signature = (global_mean="weighted", rtol=core::DEFAULT_PINV_RTOL))]
    fn finalize(&self, global_mean: &str, rtol: f64) -> PyResult<MeanStats> {
        let gm = self::global_mean(global_mean)?;
        let acc = take(&self.inner)?;
        Ok(MeanStats {
            inner: acc.finalize_with(gm, rtol).map_err(py_err)?,
        })
    }
}

/// The outcome of pass 1 (read-only): class means, counts, global mean, the rank kept.
#[pyclass(module = "collapse_metrics", frozen)]
struct MeanStats {
    inner: core::MeanStats,
}

#[pymethods]
impl MeanStats {
    /// Class means [C, d] (float64).
    #[getter]
    fn means<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let s = &self.inner;
        let flat = PyArray1::from_slice(py, s.means());
        Ok(flat.reshape([s.num_classes(), s.dim()])?.into_any())
    }

    /// Samples per class seen in pass 1.
    #[getter]
    fn counts<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u64>> {
        PyArray1::from_slice(py, self.inner.counts())
    }

    /// The global mean [d] (float64).
    #[getter]
    fn global_mean<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        PyArray1::from_slice(py, self.inner.global_mean())
    }

    /// Every singular value of the centred class means, descending.
    #[getter]
    fn singular_values<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        PyArray1::from_slice(py, self.inner.singular_values())
    }

    /// The rank kept by the pseudo-inverse of Sigma_B.
    #[getter]
    fn rank(&self) -> usize {
        self.inner.rank()
    }

    #[getter]
    fn num_classes(&self) -> usize {
        self.inner.num_classes()
    }

    #[getter]
    fn dim(&self) -> usize {
        self.inner.dim()
    }
}

/// Pass 2, from the MeanStats of pass 1 and an optional classifier (weight [C, d], bias [C]):
/// update() with every batch (the pass-1 data, or e.g. a test set), then finalize() for the
/// report dict.
#[pyclass(module = "collapse_metrics")]
struct CollapseAccumulator {
    inner: Mutex<Option<core::CollapseAccumulator>>,
}

#[pymethods]
impl CollapseAccumulator {
    #[new]
    #[pyo3(signature = (stats, weight=None, bias=None))]
    fn new<'py>(
        stats: &MeanStats,
        weight: Option<&Bound<'py, PyAny>>,
        bias: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Self> {
        let arrays = classifier_arrays(weight, bias)?;
        let inner =
            core::CollapseAccumulator::new(&stats.inner, classifier(&arrays)?).map_err(py_err)?;
        Ok(CollapseAccumulator {
            inner: Mutex::new(Some(inner)),
        })
    }

    /// Adds a batch, with the same rules as ClassMeans.update.
    fn update<'py>(
        &self,
        py: Python<'py>,
        features: &Bound<'py, PyAny>,
        labels: &Bound<'py, PyAny>,
    ) -> PyResult<()> {
        update(py, &self.inner, features, labels, |acc, f, y| {
            acc.update(f, y)
        })
    }

    /// The report, as collapse_report returns it.
    fn finalize<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let acc = take(&self.inner)?;
        report_dict(py, &acc.finalize().map_err(py_err)?)
    }
}

#[pymodule(name = "collapse_metrics")]
fn python_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(collapse_report, m)?)?;
    m.add_function(wrap_pyfunction!(effective_depth, m)?)?;
    m.add_class::<ClassMeans>()?;
    m.add_class::<MeanStats>()?;
    m.add_class::<CollapseAccumulator>()?;
    m.add("DEFAULT_PINV_RTOL", core::DEFAULT_PINV_RTOL)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
