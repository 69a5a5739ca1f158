module weftpeer

go 1.19
