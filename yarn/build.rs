//! Compiles our hand-written `.proto` declarations with `protox` (pure Rust,
//! no system `protoc`) and generates prost code into `OUT_DIR`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    const FILES: [&str; 3] = [
        "proto/hadoop_common.proto",
        "proto/hadoop_hdfs.proto",
        "proto/hadoop_yarn.proto",
    ];
    for f in FILES {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(FILES, ["proto"])?;
    prost_build::Config::new().compile_fds(fds)?;
    Ok(())
}
