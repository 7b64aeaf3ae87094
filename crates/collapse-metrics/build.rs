//! With the `tch` feature this crate's tests and examples link libtorch, and torch-sys gives
//! final binaries no rpath to it; `--no-as-needed -ltorch` keeps libtorch_cuda linked so CUDA
//! is seen on a GPU machine (tch-rs issues 907 and 980). Without the feature: nothing to do.
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Some(lib) = std::env::var_os("DEP_TCH_LIBTORCH_LIB") else {
        return;
    };
    let lib = lib.to_string_lossy();
    for arg in [
        &format!("-Wl,-rpath={lib}"),
        "-Wl,--no-as-needed",
        "-ltorch",
    ] {
        println!("cargo:rustc-link-arg={arg}");
    }
}
