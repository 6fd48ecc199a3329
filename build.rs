//! Compiles Lark's long-connection frame schema (`proto/pbbp2.proto`) into Rust with prost,
//! using protox (a protobuf compiler in Rust), so no `protoc` has to be installed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/pbbp2.proto");
    println!("cargo:rerun-if-changed=proto/gogo.proto");
    let descriptors = protox::compile(["pbbp2.proto"], ["proto"])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}
