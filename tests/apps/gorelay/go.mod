module sockaccel/gorelay

go 1.19
