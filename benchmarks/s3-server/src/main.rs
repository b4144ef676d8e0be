//! `stokehold-bench-s3-server ROOT ACCESS_KEY SECRET_KEY`: serves the
//! folder ROOT (one sub-folder per bucket) as S3 on 127.0.0.1, prints the
//! port on stdout, and stops when stdin closes.

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [root, access, secret] = args.as_slice() else {
        return Err("usage: stokehold-bench-s3-server ROOT ACCESS_KEY SECRET_KEY".into());
    };
    let mut builder =
        S3ServiceBuilder::new(s3s_fs::FileSystem::new(root).map_err(|e| format!("{root}: {e:?}"))?);
    builder.set_auth(SimpleAuth::from_single(access.as_str(), secret.as_str()));
    let service = builder.build();
    // The loopback address only.
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    println!("{}", listener.local_addr()?.port());
    let http = Builder::new(TokioExecutor::new());
    let mut stdin = tokio::io::stdin();
    let mut sink = [0u8; 64];
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((socket, _)) = accepted else { continue };
                // Responses go out as written: headers and body are separate
                // writes, which Nagle's algorithm would hold for an ACK.
                let _ = socket.set_nodelay(true);
                let conn = http.serve_connection(TokioIo::new(socket), service.clone()).into_owned();
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
            read = stdin.read(&mut sink) => {
                if matches!(read, Ok(0) | Err(_)) {
                    return Ok(());
                }
            }
        }
    }
}
