server {
    listen 127.0.0.1:@PORT1@ ssl;
    listen [::1]:@PORT1@ ssl ipv6only=on;
    listen 127.0.0.1:@PORT2@ ssl;
    listen [::1]:@PORT2@ ssl ipv6only=on;
    ssl_certificate @ROOT@/etc/nginx/ssl/ipv6ssl.crt;
    ssl_certificate_key @ROOT@/etc/nginx/ssl/ipv6ssl.key;
    server_name ipv6ssl.com;
}
