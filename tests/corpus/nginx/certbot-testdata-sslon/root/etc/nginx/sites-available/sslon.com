server {
	server_name sslon.com;
	listen 127.0.0.1:@PORT1@;
	ssl on;
	ssl_certificate snakeoil.cert;
	ssl_certificate_key snakeoil.key;
}
