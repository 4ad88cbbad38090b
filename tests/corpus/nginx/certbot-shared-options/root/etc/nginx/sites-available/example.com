server {
	root @ROOT@/var/www/example.com;
	index index.html index.htm index.nginx-debian.html;
	server_name example.com;

	location / {
		try_files $uri $uri/ =404;
	}

    listen 127.0.0.1:@PORT1@ ssl; # managed by Certbot
    ssl_certificate @ROOT@/etc/letsencrypt/live/example.com/fullchain.pem; # managed by Certbot
    ssl_certificate_key @ROOT@/etc/letsencrypt/live/example.com/privkey.pem; # managed by Certbot
    include @ROOT@/etc/letsencrypt/options-ssl-nginx.conf; # managed by Certbot
    ssl_dhparam @ROOT@/etc/letsencrypt/ssl-dhparams.pem; # managed by Certbot

}
