//! Shared build script of every package whose binaries or tests link libtorch.
//!
//! torch-sys does not give final binaries an rpath to libtorch, and without
//! `--no-as-needed -ltorch` the linker drops libtorch_cuda, so CUDA is never
//! seen on a GPU machine (tch-rs issues 907 and 980).
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath={lib}");
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch");
    }
}
